"""`approval: required`: the flow pauses after the gate until `anomalyflow approve`."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anomalyflow.params import load_params
from anomalyflow.pipeline.production import project_registry
from anomalyflow.registry.store import Registry
from anomalyflow.scheduling import connect_or_start
from tests.integration.test_main_job import SMALL
from tests.integration.test_schedule import _free_port, prefect_api


def test_a_paused_run_is_promoted_once_approved_and_the_reviewer_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(SMALL + "registry: {approval: required}\n")
    server = connect_or_start(_free_port())
    run = None
    try:
        run = subprocess.Popen(
            [sys.executable, "-m", "anomalyflow", "run"],
            env=os.environ | {"PREFECT_API_URL": server.api_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline, paused = time.monotonic() + 300, []
        while time.monotonic() < deadline and not paused and run.poll() is None:
            paused = prefect_api(
                server.api_url,
                "flow_runs/filter",
                {"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}},
            )
            time.sleep(1)
        assert paused, run.communicate(timeout=60)[0] if run.poll() is not None else "no pause"
        registry = project_registry(load_params())
        assert registry.state().production is None  # nothing promoted while waiting
        _assert_the_pause_links_the_review_page(server.api_url, str(paused[0]["id"]), registry)

        # A separate process, as a reviewer's shell: Prefect keeps its API settings in-process.
        review = ["approve", str(paused[0]["id"]), "--by", "alice", "--reason", "curves ok"]
        answer = subprocess.run(
            [sys.executable, "-m", "anomalyflow", *review],
            env=os.environ | {"PREFECT_API_URL": server.api_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert answer.returncode == 0, answer.stdout + answer.stderr
        output, _ = run.communicate(timeout=300)
    finally:
        if run is not None and run.poll() is None:
            run.kill()
        server.stop()

    assert run.returncode == 0, output
    assert "Decision: promoted" in output and "approved by alice" in output
    production = registry.production()
    assert production is not None and production.stage == "production"
    review = next(e for e in registry.history() if e["action"] == "approve")
    # --by names the reviewer; the account that ran the command is recorded beside it.
    assert review["actor"] in ("alice", f"alice (as {getpass.getuser()})")
    assert review["reason"] == "curves ok"
    promotion = registry.history()[-1]
    assert promotion["action"] == "promote" and promotion["actor"] == review["actor"]


def _assert_the_pause_links_the_review_page(api_url: str, run_id: str, registry: Registry) -> None:
    """The review page exists before the decision, and the pause names and links it."""
    pages = list(Path("artifacts/reports").glob("*/index.html"))
    assert len(pages) == 1
    candidate = registry.versions()[0].version
    inputs = prefect_api(api_url, f"flow_runs/{run_id}/input/filter", {"prefix": "", "limit": 20})
    descriptions = [str(i["value"]) for i in inputs if str(i["key"]).endswith("description")]
    assert len(descriptions) == 1
    assert candidate in descriptions[0] and pages[0].resolve().as_uri() in descriptions[0]
    links = prefect_api(
        api_url, "artifacts/filter", {"artifacts": {"key": {"any_": ["review-page"]}}}
    )
    assert len(links) == 1 and pages[0].resolve().as_uri() in str(links[0]["data"])
