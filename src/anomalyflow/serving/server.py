"""Starting the BentoML service on loopback, and the smoke test promotion requires."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from anomalyflow.errors import Refusal
from anomalyflow.registry.store import ModelVersion

SERVICE = "anomalyflow.serving.service:AnomalyService"
PINNED_VERSION = "ANOMALYFLOW_MODEL_VERSION"  # serve this version, not production
PARAMS_FILE = "ANOMALYFLOW_PARAMS"  # the params.yaml the service reads


class SmokeTestFailed(Refusal, RuntimeError):
    """The packaged service did not start, answer health checks or score as in process."""


@dataclass(frozen=True)
class RunningService:
    """A service process we started, and where it listens."""

    url: str
    process: subprocess.Popen[bytes]

    def post(self, route: str, payload: dict[str, Any], timeout: float = 30.0) -> Any:
        """POST JSON and return the decoded answer (HTTP errors raise)."""
        request = urllib.request.Request(
            self.url + route,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())


def service_command(host: str, port: int) -> list[str]:
    """``bentoml serve`` for our service, bound to ``host`` (loopback by default)."""
    return [
        sys.executable, "-m", "bentoml", "serve", SERVICE,
        "--host", host, "--port", str(port), "--do-not-track",
    ]  # fmt: skip


def service_environment(
    bentoml_home: Path, params_file: Path, version: str | None
) -> dict[str, str]:
    """The service's environment: our BentoML home and params, and a pinned version."""
    env = os.environ | {
        "BENTOML_HOME": str(bentoml_home.resolve()),
        "BENTOML_DO_NOT_TRACK": "true",
        PARAMS_FILE: str(params_file.resolve()),
    }
    env.pop(PINNED_VERSION, None)
    if version:
        env[PINNED_VERSION] = version
    return env


@contextmanager
def running_service(
    bentoml_home: Path,
    params_file: Path,
    version: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout_s: float = 120.0,
) -> Iterator[RunningService]:
    """Start the service, wait for ``/readyz``, and stop it (and its workers) on exit."""
    port = port or free_port(host)
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe would block it
        process = subprocess.Popen(
            service_command(host, port),
            env=service_environment(bentoml_home, params_file, version),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://{host}:{port}"
        try:
            _wait_ready(url, process, log, timeout_s)
            yield RunningService(url, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def smoke_test(
    version: ModelVersion, bentoml_home: Path, params_file: Path, rtol: float = 1e-5
) -> dict[str, Any]:
    """Serve ``version`` alone, check health, and score its smoke batch over HTTP.

    The answer must match the in-process model row for row, or promotion stops.
    """
    from anomalyflow.detector import AnomalyDetector  # torch: only when a test runs

    detector = AnomalyDetector.load(version.detector_dir)
    rows = np.load(version.smoke_batch)
    records = [dict(zip(detector.feature_names_, map(float, row), strict=True)) for row in rows]
    expected = detector.decision_function(rows)
    started = time.perf_counter()
    try:
        with running_service(bentoml_home, params_file, version.version) as service:
            for probe in ("/livez", "/readyz"):
                with urllib.request.urlopen(service.url + probe, timeout=10) as response:
                    if response.status != 200:
                        raise SmokeTestFailed(f"{probe} answered {response.status}")
            answer = service.post("/score", {"records": records})
    except (OSError, urllib.error.URLError) as error:
        raise SmokeTestFailed(f"the service for '{version.version}' failed: {error}") from None
    served = np.array([r["score"] for r in answer["results"]])
    largest_gap = float(np.max(np.abs(served - expected))) if len(rows) else 0.0
    if answer["model_version"] != version.version or not np.allclose(
        served, expected, rtol=rtol, atol=1e-6
    ):
        raise SmokeTestFailed(
            f"served scores differ from the in-process model (largest gap {largest_gap:.3g}, "
            f"served version {answer['model_version']})"
        )
    return {
        "passed": True,
        "rows": len(rows),
        "largest_gap": largest_gap,
        "seconds": round(time.perf_counter() - started, 1),
    }


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _wait_ready(
    url: str, process: subprocess.Popen[bytes], log: IO[bytes], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            raise SmokeTestFailed(
                f"the service exited with code {process.returncode}: {output[-2000:]}"
            )
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.3)
    raise SmokeTestFailed(f"the service at {url} was not ready within {timeout_s:.0f} s")
