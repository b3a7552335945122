"""Where scheduled flows run: the Prefect server named by ``PREFECT_API_URL``, or a local
one started here. Cron schedules never fire on Prefect's ephemeral API.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

LOCAL_HOST = "127.0.0.1"
PREFECT_PORT = 4200  # of the local Prefect server started where a real API is needed


@dataclass(frozen=True)
class PrefectServer:
    """The API schedules are registered with; ``process`` is set when we started it."""

    api_url: str
    process: subprocess.Popen[bytes] | None

    def stop(self) -> None:
        """Stop a server this process started (an external one is left alone)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


def connect_or_start(port: int, timeout_s: float = 90.0) -> PrefectServer:
    """Use ``PREFECT_API_URL`` if set, else start ``prefect server`` on 127.0.0.1:port.

    The caller points its flows at ``api_url`` (see :func:`use_server`).
    """
    existing = os.environ.get("PREFECT_API_URL")
    if existing:
        return PrefectServer(existing, None)
    api_url = f"http://{LOCAL_HOST}:{port}/api"
    env = os.environ | {
        "PREFECT_SERVER_API_HOST": LOCAL_HOST,
        # Set the port through settings, not --port: the UI reads its API URL from them.
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--analytics-off"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return PrefectServer(api_url, process)
        except OSError:
            time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"prefect server did not answer on {api_url} within {timeout_s:.0f} s")


def use_server(server: PrefectServer) -> None:
    """Point this process's flows (and the processes it starts) at ``server``."""
    os.environ["PREFECT_API_URL"] = server.api_url
