"""`anomalyflow validate` and `drift` with `task_runner: dask`: a batch of four row groups is
validated per partition and a bad partition quarantines the whole batch; drift compares
samples no larger than `drift_sample_rows` and says so. The Dask cluster is a 2-worker
LocalCluster in this process, current while the commands run (as the flow's is)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app

pytest.importorskip("distributed")
runner = CliRunner()
PARAMS = """
synthetic: {history_rows: 12000, recent_rows: 4000, holdout_rows: 1000}
runtime: {progress: false}
orchestration: {task_runner: %s, partition_rows: 1000, drift_sample_rows: 10000}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project with the built-in data, its batch rewritten in 4 row groups of 1,000
    rows, and a Dask client current in this process."""
    from distributed import Client, LocalCluster

    root = tmp_path_factory.mktemp("project")
    before = Path.cwd()
    os.chdir(root)
    try:
        for runner_name in ("dask", "threads"):
            Path(f"{runner_name}.yaml").write_text(PARAMS % runner_name)
        done = runner.invoke(app, ["generate", "--params", "threads.yaml"])
        assert done.exit_code == 0, done.output
        batch = pq.read_table("data/recent.parquet")
        pq.write_table(batch, "batch.parquet", row_group_size=1000)
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
            ) as cluster,
            Client(cluster),
        ):
            yield root
    finally:
        os.chdir(before)


def _run(command: str, runner_name: str, batch: str) -> tuple[int, str]:
    done = runner.invoke(app, [command, "--data", batch, "--params", f"{runner_name}.yaml"])
    return done.exit_code, done.output


def test_validate_on_dask_writes_the_one_process_result_per_partition(project: Path) -> None:
    code, output = _run("validate", "dask", "batch.parquet")
    assert code == 0, output
    on_dask = json.loads(Path("artifacts/validation.json").read_text())
    code, output = _run("validate", "threads", "batch.parquet")
    assert code == 0, output
    in_one = json.loads(Path("artifacts/validation.json").read_text())
    assert on_dask["partitions"] == 4 and "partitions" not in in_one
    assert on_dask["success"] and on_dask["evaluated"] == in_one["evaluated"]
    for a, b in zip(on_dask["expectations"], in_one["expectations"], strict=True):
        assert a | {"observed": None} == b | {"observed": None}
        assert a["observed"] == (
            pytest.approx(b["observed"]) if isinstance(b["observed"], float) else b["observed"]
        )


def test_one_bad_partition_quarantines_the_whole_batch(project: Path) -> None:
    frame = pd.read_parquet("batch.parquet")
    frame.loc[2000:2999, "hour"] += 1000  # the third row group only
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, "bad-batch.parquet", row_group_size=1000)

    code, output = _run("validate", "dask", "bad-batch.parquet")

    assert code == 2
    assert "bad-batch.parquet" in output and "expect_column_values_to_be_between" in output
    kept = list(Path("data/quarantine").glob("bad-batch-*"))
    assert len(kept) == 1 and (kept[0] / "bad-batch.parquet").exists()
    report = json.loads((kept[0] / "validation.json").read_text())
    assert [(f["expectation"], f["column"]) for f in report["failures"]] == [
        ("expect_column_values_to_be_between", "hour")
    ]


def test_drift_on_dask_compares_bounded_samples_and_says_so(project: Path) -> None:
    code, output = _run("drift", "dask", "batch.parquet")
    assert code == 0, output
    summary = json.loads(Path("artifacts/drift/summary.json").read_text())
    sample = summary["sample"]
    assert (sample["reference_rows"], sample["reference_total"]) == (10000, 12000)
    assert (sample["batch_rows"], sample["batch_total"]) == (4000, 4000)  # within the bound
    assert sample["note"] in Path("artifacts/drift/drift.html").read_text()
    assert isinstance(summary["drift_detected"], bool)
