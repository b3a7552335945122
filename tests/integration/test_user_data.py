"""A user's own data set (sensor readings, its own column names) through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app
from tests.conftest import REPO, make_blobs
from tests.integration.test_dvc_ledger import _dvc
from tests.integration.test_main_job import SMALL

FEATURES = ("temperature_c", "pressure_kpa", "vibration_rms", "motor_current_a", "flow_lpm")
runner = CliRunner()


def write_sensor_data(folder: Path) -> None:
    """Reference (unlabeled), a partly labeled batch (CSV) and a labeled holdout.

    One correlated process for all three, 2% faults that break the correlation or jump.
    """
    x, y = make_blobs(rows=8000, features=len(FEATURES), anomaly_share=0.02, seed=3)
    scale = np.array([5.0, 20.0, 0.3, 2.0, 10.0])
    offset = np.array([60.0, 300.0, 1.0, 15.0, 120.0])
    frame = pd.DataFrame(x * scale + offset, columns=list(FEATURES))
    frame.insert(0, "reading_id", [f"r{i:05d}" for i in range(len(frame))])
    start = np.datetime64("2026-01-01T00:00")
    frame["measured_at"] = (start + np.arange(len(frame)) * np.timedelta64(1, "m")).astype(str)
    frame["fault"] = y
    reference, batch, holdout = frame[:4000], frame[4000:6000].copy(), frame[6000:]
    reference.drop(columns="fault").to_parquet(folder / "reference.parquet", index=False)
    faults = np.flatnonzero(batch["fault"].to_numpy())
    batch.iloc[faults[::2], batch.columns.get_loc("fault")] = 0  # half the faults confirmed
    batch.to_csv(folder / "batch.csv", index=False)
    holdout.to_parquet(folder / "holdout.parquet", index=False)


def user_params(folder: Path) -> str:
    return SMALL + (
        "data:\n"
        "  source: files\n"
        f"  features: [{', '.join(FEATURES)}]\n"
        "  label: fault\n"
        "  id: reading_id\n"
        "  timestamp: measured_at\n"
        f"  reference: {folder / 'reference.parquet'}\n"
        f"  holdout: {folder / 'holdout.parquet'}\n"
    )


@pytest.fixture
def user_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout (the committed GX suite, built for the built-in schema) and user data."""
    shutil.copytree(REPO / "gx", tmp_path / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    (tmp_path / "mydata").mkdir()
    write_sensor_data(tmp_path / "mydata")
    (tmp_path / "params.yaml").write_text(user_params(tmp_path / "mydata"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "mydata"


def test_run_trains_on_user_files_and_evaluates_on_their_holdout(user_project: Path) -> None:
    shutil.copy(REPO / "dvc.yaml", "dvc.yaml")
    _dvc("init", "--no-scm", "-q")

    result = runner.invoke(app, ["run", "--data", str(user_project / "batch.csv")])

    assert result.exit_code == 0, result.output
    assert "DVC: dvc.yaml describes the built-in data set" in result.output
    assert not Path("dvc.lock").exists()  # no ledger crediting the built-in files
    evaluation = json.loads(Path("artifacts/evaluation.json").read_text())
    assert evaluation["rows"] == 2000  # the user's holdout, not the built-in one
    assert evaluation["auroc"] > 0.85
    candidate = json.loads(Path("artifacts/candidate/detector.json").read_text())
    assert tuple(candidate["feature_names"]) == FEATURES
    suite = json.loads(Path("gx/expectations/incoming_batch.json").read_text())
    assert suite["meta"]["anomalyflow_schema"]["features"] == list(FEATURES)  # rebuilt
    assert not Path("data/history.parquet").exists()  # no built-in data was generated


def test_batch_missing_a_feature_is_rejected_naming_it(user_project: Path) -> None:
    batch = pd.read_csv(user_project / "batch.csv").drop(columns="vibration_rms")
    batch.to_csv(user_project / "broken.csv", index=False)

    result = runner.invoke(app, ["run", "--data", str(user_project / "broken.csv")])

    assert result.exit_code == 2
    assert "broken.csv" in result.output and "vibration_rms" in result.output
    assert "expect_table_columns_to_match_set" in result.output
    assert list(Path("data/quarantine").glob("broken-*/broken.csv"))
    assert not Path("artifacts/candidate").exists()


def test_missing_reference_or_holdout_column_stops_before_writing(user_project: Path) -> None:
    holdout = pd.read_parquet(user_project / "holdout.parquet").drop(columns="flow_lpm")
    holdout.to_parquet(user_project / "holdout.parquet", index=False)

    stage = runner.invoke(app, ["validate", "--data", str(user_project / "batch.csv")])

    assert stage.exit_code == 2
    assert "holdout.parquet: column 'flow_lpm': missing column required by the schema" in (
        stage.output
    )
    (user_project / "reference.parquet").unlink()
    run = runner.invoke(app, ["run", "--data", str(user_project / "batch.csv")])
    assert run.exit_code == 2
    assert "reference.parquet: file not found" in run.output
    assert not Path("artifacts").exists() and not Path("data").exists()
    assert not Path("gx/uncommitted").exists()  # the suite was not even touched
