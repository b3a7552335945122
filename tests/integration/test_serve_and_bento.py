"""`anomalyflow serve` on loopback, and `bentoml build` of bentofile.yaml offline."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from anomalyflow.params import load_params
from anomalyflow.pipeline.production import project_registry
from anomalyflow.serving.server import free_port, smoke_test
from tests.conftest import REPO, decision_record, make_blobs


def _metadata_when_ready(url: str, process: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            request = urllib.request.Request(
                url + "/metadata", data=b"{}", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]
        except (OSError, urllib.error.URLError):
            time.sleep(0.5)
    raise AssertionError(f"{url} never answered")


def _closed_within(port: int, seconds: float) -> bool:
    """Nothing answers on the port any more (within ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return True
        time.sleep(0.5)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def test_serve_binds_loopback_and_a_built_bento_serves_the_production_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved_detectors: list[Path]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("runtime: {progress: false}\n")
    registry = project_registry(load_params())
    version = registry.register(
        saved_detectors[0], decision_record(), make_blobs(rows=8)[0]
    ).version
    registry.promote(version, lambda v: smoke_test(v, registry.home, Path("params.yaml")))

    port = free_port()
    serving = subprocess.Popen(
        [sys.executable, "-m", "anomalyflow", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _metadata_when_ready(f"http://127.0.0.1:{port}", serving)["model_version"] == version
    finally:
        _stop(serving)
    # `kill <pid>` of `anomalyflow serve` once left BentoML's worker serving on the port.
    assert _closed_within(port, seconds=15)

    env = os.environ | {"BENTOML_HOME": str(registry.home.resolve())}
    build = ["build", "-f", str(REPO / "bentofile.yaml"), "--do-not-track", str(REPO / "src")]
    built = subprocess.run(
        [sys.executable, "-m", "bentoml", *build],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert 'Successfully built Bento(tag="anomalyflow-service:' in built.stdout

    # Elsewhere, without the audit log: the Bento serves the version labelled production.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(registry.home, elsewhere, ignore=shutil.ignore_patterns("anomalyflow"))
    port = free_port()
    serve = ["serve", "anomalyflow-service:latest", "--host", "127.0.0.1", "--port", str(port)]
    bento = subprocess.Popen(
        [sys.executable, "-m", "bentoml", *serve, "--do-not-track"],
        cwd=elsewhere,
        env=os.environ | {"BENTOML_HOME": str(elsewhere)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        metadata = _metadata_when_ready(f"http://127.0.0.1:{port}", bento)
    finally:
        _stop(bento)
    assert metadata["model_version"] == version
