"""`anomalyflow schedule` registers a cron deployment on a real Prefect server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from anomalyflow.scheduling import connect_or_start


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prefect_api(api_url: str, route: str, body: dict[str, object]) -> list[dict[str, object]]:
    """POST a filter query to a Prefect server's REST API."""
    request = urllib.request.Request(
        f"{api_url}/{route}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_schedule_registers_a_cron_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    server = connect_or_start(_free_port())
    assert server.process is not None  # no PREFECT_API_URL: our own server was started
    serving = None
    try:
        (tmp_path / "params.yaml").write_text("runtime: {progress: false}\n")
        serving = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "anomalyflow",
                "schedule",
                "--cron",
                "0 3 * * *",
                "--incoming",
                str(tmp_path / "incoming"),
                "--params",
                str(tmp_path / "params.yaml"),
            ],
            cwd=tmp_path,
            env=os.environ | {"PREFECT_API_URL": server.api_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline, found = time.monotonic() + 120, []
        while time.monotonic() < deadline and not found:
            found = [
                d
                for d in prefect_api(server.api_url, "deployments/filter", {})
                if d["name"] == "scheduled-retrain"
            ]
            time.sleep(1)
        assert found, "the deployment was not registered"
        schedules = found[0]["schedules"]
        assert isinstance(schedules, list)
        assert schedules[0]["schedule"]["cron"] == "0 3 * * *"
        assert (tmp_path / "incoming").is_dir()
    finally:
        if serving is not None:
            serving.send_signal(signal.SIGTERM)
            output = serving.communicate(timeout=60)[0]
            assert "using the Prefect server" in output
        server.stop()
