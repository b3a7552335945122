"""With `task_runner: dask`, two fine-tunes run in parallel on a local Dask cluster whose
workers report to a real Prefect server; a small batch's drift is compared whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from anomalyflow.scheduling import connect_or_start
from tests.integration.test_main_job import SMALL
from tests.integration.test_schedule import _free_port, prefect_api


def test_dask_runner_fine_tunes_two_seeds_in_parallel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    server = connect_or_start(_free_port())
    try:
        (tmp_path / "params.yaml").write_text(
            SMALL + "orchestration: {task_runner: dask, finetune_seeds: 2, dask_workers: 2}\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "anomalyflow", "run"],
            cwd=tmp_path,
            text=True,
            capture_output=True,
            timeout=600,
            env=os.environ | {"PREFECT_API_URL": server.api_url},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Decision: promoted" in done.stdout

        query = {"task_runs": {"name": {"like_": "finetune"}}}
        runs = [
            r
            for r in prefect_api(server.api_url, "task_runs/filter", query)
            if str(r["name"]).startswith("finetune")
        ]
        assert len(runs) == 2 and all(r["state_type"] == "COMPLETED" for r in runs)
        spans = sorted(
            (
                datetime.fromisoformat(str(r["start_time"])),
                datetime.fromisoformat(str(r["end_time"])),
            )
            for r in runs
        )
        assert spans[1][0] < spans[0][1], "the two fine-tunes did not overlap in time"
        decision = json.loads((tmp_path / "artifacts" / "decision.json").read_text())
        assert decision["lineage"]["finetune_seed"] in {"0", "1"}
        # Batch and reference within drift_sample_rows: compared whole, as without Dask.
        (summary,) = tmp_path.glob("artifacts/**/drift/summary.json")
        assert "sample" not in json.loads(summary.read_text())
    finally:
        server.stop()
