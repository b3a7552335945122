"""Starting the BentoML service on loopback, and the smoke test promotion requires."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from anomalyflow.errors import Refusal
from anomalyflow.params import load_params
from anomalyflow.registry.store import ModelVersion
from anomalyflow.serving.tether import SERVER_PID, tethered

SERVICE = "anomalyflow.serving.service:AnomalyService"
PINNED_VERSION = "ANOMALYFLOW_MODEL_VERSION"  # serve this version, not production
PARAMS_FILE = "ANOMALYFLOW_PARAMS"  # the params.yaml the service reads
MODEL_NAME = "ANOMALYFLOW_MODEL_NAME"  # the model name whose versions it serves
# Torch threads of a service worker. Two made a single record 0.6 ms slower on a quiet
# 2-core machine and ten times slower on a loaded one (the pool's threads spin between
# calls, beside the event loop and the client): scale with workers, not threads.
TORCH_THREADS = 1


class SmokeTestFailed(Refusal, RuntimeError):
    """The packaged service did not start, answer health checks or score as in process."""


@dataclass(frozen=True)
class RunningService:
    """A service process we started, where it listens, its log and its token."""

    url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    token: str | None = None  # the bearer token it requires, when one is set

    def headers(self) -> dict[str, str]:
        """JSON, with the bearer token when the service requires one."""
        token = {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}
        return {"Content-Type": "application/json"} | token

    def post(self, route: str, payload: dict[str, Any], timeout: float = 30.0) -> Any:
        """POST JSON and return the decoded answer (HTTP errors raise)."""
        request = urllib.request.Request(
            self.url + route, data=json.dumps(payload).encode(), headers=self.headers()
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def output(self) -> str:
        """What the service has logged so far (stdout and stderr)."""
        return _read_log(self.log)


def service_command(host: str, port: int, service: str = SERVICE) -> list[str]:
    """``bentoml serve`` for our service (or another, ``module:Class``), bound to ``host``
    (loopback by default)."""
    return [
        sys.executable, "-m", "bentoml", "serve", service,
        "--host", host, "--port", str(port), "--do-not-track",
    ]  # fmt: skip


def service_environment(
    bentoml_home: Path,
    params_file: Path,
    version: str | None,
    extra: Mapping[str, str] | None = None,
    model_name: str | None = None,
) -> dict[str, str]:
    """The service's environment: our BentoML home and params, a pinned version, and the
    model name (None: the one params derive).

    ``extra`` adds variables (a token, in tests) over the ones of this process.
    """
    env = (
        os.environ
        | dict(extra or {})
        | {
            "BENTOML_HOME": str(bentoml_home.resolve()),
            "BENTOML_DO_NOT_TRACK": "true",
            PARAMS_FILE: str(params_file.resolve()),
        }
    )
    env.pop(SERVER_PID, None)  # a server's own, never inherited (see tether.py)
    for variable, value in ((PINNED_VERSION, version), (MODEL_NAME, model_name)):
        env.pop(variable, None)
        if value:
            env[variable] = value
    return env


@contextmanager
def running_service(
    bentoml_home: Path,
    params_file: Path,
    version: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout_s: float = 120.0,
    extra_env: Mapping[str, str] | None = None,
    model_name: str | None = None,
    service: str = SERVICE,
) -> Iterator[RunningService]:
    """Start the service (or ``service``), wait for ``/readyz``, and stop it (and its
    workers) on exit.

    A service that refuses to start (a version failing verification, say) exits at
    once: :class:`SmokeTestFailed` with its last lines, without waiting ``timeout_s``.
    It ends with this process however this process ends, ``kill -9`` included (on
    Linux; see :mod:`anomalyflow.serving.tether`).
    """
    port = port or free_port(host)
    env = service_environment(bentoml_home, params_file, version, extra_env, model_name)
    token = env.get(load_params(params_file).serving.api_token_env) or None
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe would block it
        command = tethered(service_command(host, port, service))
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://{host}:{port}"
        try:
            _wait_ready(url, process, log, timeout_s)
            yield RunningService(url, process, log, token)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def smoke_test(
    version: ModelVersion,
    bentoml_home: Path,
    params_file: Path,
    rtol: float = 1e-5,
    say: Callable[[str], object] = lambda line: None,
) -> dict[str, Any]:
    """Serve ``version`` alone, check health, and score its smoke batch over HTTP.

    The version's files must pass verification and its in-process scores be finite,
    or no server is started; the served answer must then match them row for row, or
    promotion stops.
    """
    from anomalyflow.registry.verify import (  # torch: only when a test runs
        verified_detector,
        verified_smoke_rows,
    )

    detector = verified_detector(version.path, version.version)
    rows = verified_smoke_rows(version.path, version.version, detector.n_features_in_)
    records = [dict(zip(detector.feature_names_, map(float, row), strict=True)) for row in rows]
    expected = _finite(detector.decision_function(rows), version.version, "in process")
    say(f"  weights verified; {len(rows)} smoke rows score finite in process")
    started = time.perf_counter()
    try:
        with running_service(
            bentoml_home, params_file, version.version, model_name=version.model_name
        ) as service:
            say(f"  packaged service started at {service.url}")
            for probe in ("/livez", "/readyz"):
                with urllib.request.urlopen(service.url + probe, timeout=10) as response:
                    if response.status != 200:
                        raise SmokeTestFailed(f"{probe} answered {response.status}")
            say("  /livez and /readyz answered 200")
            answer = service.post("/score", {"records": records})
    except (OSError, urllib.error.URLError) as error:
        raise SmokeTestFailed(f"the service for '{version.version}' failed: {error}") from None
    served = _finite(_scores(answer), version.version, "as served")
    largest_gap = float(np.max(np.abs(served - expected))) if len(rows) else 0.0
    if answer.get("model_version") != version.version or not np.allclose(
        served, expected, rtol=rtol, atol=1e-6
    ):
        raise SmokeTestFailed(
            f"served scores differ from the in-process model (largest gap {largest_gap:.3g}, "
            f"served version {answer.get('model_version')})"
        )
    say(f"  /score matched the in-process scores (largest gap {largest_gap:.2g})")
    return {
        "passed": True,
        "rows": len(rows),
        "largest_gap": largest_gap,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _scores(answer: Any) -> np.ndarray:
    """The scores of a ``/score`` answer; anything but a number (``null``) reads as NaN."""
    try:
        results = answer["results"]
        return np.array(
            [r["score"] if isinstance(r["score"], int | float) else math.nan for r in results],
            dtype=np.float64,
        )
    except (KeyError, TypeError) as error:
        raise SmokeTestFailed(f"the /score answer is malformed ({error!r})") from None


def _finite(scores: np.ndarray, version: str, where: str) -> np.ndarray:
    bad = int(np.count_nonzero(~np.isfinite(scores)))
    if bad:
        raise SmokeTestFailed(
            f"'{version}' scores {bad} of its {len(scores)} smoke rows as NaN or infinite "
            f"{where}: a model that cannot score is never promoted"
        )
    return scores


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
            raise SmokeTestFailed(
                f"the service exited with code {process.returncode}: {_read_log(log)[-2000:]}"
            )
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.3)
    raise SmokeTestFailed(f"the service at {url} was not ready within {timeout_s:.0f} s")


def _read_log(log: IO[bytes]) -> str:
    """The log so far, read without moving the offset the service writes at (shared)."""
    size = os.fstat(log.fileno()).st_size
    return os.pread(log.fileno(), size, 0).decode(errors="replace")
