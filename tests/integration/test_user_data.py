"""A user's own data set (sensor readings, its own column names) through the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from anomalyflow.cli import app
from anomalyflow.pipeline.stages import BATCH_CHECKS
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


SENSOR_DATA = {  # params.yaml's data section for the sensor files write_sensor_data writes
    "source": "files",
    "features": list(FEATURES),
    "label": "fault",
    "id": "reading_id",
    "timestamp": "measured_at",
    "reference": "mydata/reference.parquet",
    "holdout": "mydata/holdout.parquet",
    "batch": "mydata/batch.csv",
    "incoming": "mydata/incoming",
}


def user_params() -> str:
    """The project's params.yaml (dvc.yaml reads every section) with small runs and our files."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in yaml.safe_load(SMALL).items():
        params[section].update(values)
    params["data"] = dict(SENSOR_DATA)
    return str(yaml.safe_dump(params))


@pytest.fixture
def user_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout (the committed GX suite, built for the built-in schema) and user data."""
    shutil.copytree(REPO / "gx", tmp_path / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    (tmp_path / "mydata").mkdir()
    write_sensor_data(tmp_path / "mydata")
    (tmp_path / "params.yaml").write_text(user_params())
    monkeypatch.chdir(tmp_path)
    return tmp_path / "mydata"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_run_trains_on_user_files_and_dvc_versions_them(user_project: Path, tmp_path: Path) -> None:
    shutil.copy(REPO / "dvc.yaml", "dvc.yaml")
    _dvc("init", "--no-scm", "-q")
    _dvc("remote", "add", "-d", "local", str(tmp_path / "remote"))

    result = runner.invoke(app, ["run"])

    assert result.exit_code == 0, result.output
    evaluation = json.loads(Path("artifacts/evaluation.json").read_text())
    assert evaluation["rows"] == 2000  # the user's holdout, not the built-in one
    assert evaluation["auroc"] > 0.85
    candidate = json.loads(Path("artifacts/candidate/detector.json").read_text())
    assert tuple(candidate["feature_names"]) == FEATURES
    suite = json.loads(Path("gx/expectations/incoming_batch.json").read_text())
    assert suite["meta"]["anomalyflow_schema"]["features"] == list(FEATURES)  # rebuilt
    assert not Path("data/history.parquet").exists()  # no built-in data was generated

    # dvc.lock credits the model to the user's own files, and the remote holds them.
    assert "DVC: recorded" in result.output
    lock = yaml.safe_load(Path("dvc.lock").read_text())["stages"]
    recorded = {out["path"]: out["md5"] for out in lock["data"]["outs"]}
    for name in ("reference.parquet", "batch.csv", "holdout.parquet"):
        assert recorded[f"mydata/{name}"] == _md5(user_project / name)
    assert {dep["path"] for dep in lock["finetune"]["deps"]} >= {"mydata/batch.csv"}
    assert "up to date" in _dvc("status")
    clone = tmp_path / "clone"
    for name in ("dvc.yaml", "dvc.lock", "params.yaml", ".dvc/config"):
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(name, clone / name)
    _dvc("pull", "-q", cwd=clone)
    assert _md5(clone / "mydata/reference.parquet") == _md5(user_project / "reference.parquet")

    # A run on another file: its checks are not credited to data.batch in dvc.lock, the
    # window it grew is versioned.
    other = pd.read_csv(user_project / "batch.csv")[::2]
    other = other.assign(reading_id="n" + other.reading_id)  # new readings: the window adds them
    other.to_csv(user_project / "other.csv", index=False)
    again = runner.invoke(app, ["run", "--data", str(user_project / "other.csv")])
    assert again.exit_code == 0, again.output
    assert "other.csv" in again.output
    after = yaml.safe_load(Path("dvc.lock").read_text())["stages"]
    assert [after[stage] for stage in BATCH_CHECKS] == [lock[stage] for stage in BATCH_CHECKS]
    assert after["window"] != lock["window"]


def test_batch_missing_a_feature_is_rejected_naming_it(user_project: Path) -> None:
    batch = pd.read_csv(user_project / "batch.csv").drop(columns="vibration_rms")
    batch.to_csv(user_project / "broken.csv", index=False)

    result = runner.invoke(app, ["run", "--data", str(user_project / "broken.csv")])

    assert result.exit_code == 2
    assert "broken.csv" in result.output and "vibration_rms" in result.output
    assert "expect_table_columns_to_match_set" in result.output
    assert list(Path("data/quarantine").glob("broken-*/broken.csv"))
    assert (user_project / "broken.csv").exists()  # the user's own file is not taken
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


def test_data_stage_checks_user_files_and_generates_nothing(user_project: Path) -> None:
    checked = runner.invoke(app, ["generate"])

    assert checked.exit_code == 0, checked.output
    assert "your files, checked" in checked.output
    assert not Path("data").exists()
    (user_project / "batch.csv").unlink()
    missing = runner.invoke(app, ["generate"])
    assert missing.exit_code == 2
    assert "batch.csv: file not found (data.batch)" in missing.output
