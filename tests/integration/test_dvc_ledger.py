"""DVC is the ledger: after `anomalyflow run` the lock is recorded, status clean, remote full."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from anomalyflow.cli import app
from anomalyflow.pipeline.stages import STAGES
from anomalyflow.telemetry import disable_telemetry
from anomalyflow.versioning import run_dvc
from tests.conftest import REPO

runner = CliRunner()


def _dvc(*args: str, cwd: Path | None = None) -> str:
    """DVC as a user runs it, in ``cwd`` (default: here); raises on failure."""
    disable_telemetry()
    return run_dvc(cwd or Path.cwd(), *args)


def small_pipeline() -> dict[str, Any]:
    """The project's dvc.yaml and params.yaml in the working folder, with small data."""
    shutil.copy(REPO / "dvc.yaml", "dvc.yaml")
    params: dict[str, Any] = yaml.safe_load((REPO / "params.yaml").read_text())
    params["synthetic"].update(
        history_rows=6000, recent_rows=4000, holdout_rows=3000, fraud_rate=0.02
    )
    params["pretrain"].update(max_epochs=6, max_steps=150)
    params["finetune"].update(frozen_epochs=2, max_epochs=5, max_steps=150)
    params["runtime"]["progress"] = False
    Path("params.yaml").write_text(yaml.safe_dump(params))
    return params


def test_run_records_lock_pushes_and_leaves_nothing_to_reproduce(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    small_pipeline()
    _dvc("init", "--no-scm", "-q")
    _dvc("remote", "add", "-d", "local", str(tmp_path / "remote"))

    result = runner.invoke(app, ["run"])

    assert result.exit_code == 0, result.output
    assert "DVC: recorded" in result.output
    lock = yaml.safe_load(Path("dvc.lock").read_text())
    assert set(lock["stages"]) == {stage.name for stage in STAGES}  # every stage recorded
    assert lock["stages"]["pretrain"]["params"]["params.yaml"]["runtime.seed"] == 0
    assert "up to date" in _dvc("status")
    assert "up to date" in _dvc("repro")
    assert any((tmp_path / "remote").rglob("*"))
    assert "auprc" in _dvc("metrics", "show")

    # A fresh checkout: only what git would hold, then `dvc pull` and `dvc repro`.
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("dvc.yaml", "dvc.lock", "params.yaml", ".dvc/config", ".dvcignore"):
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(name, clone / name)
    monkeypatch.chdir(clone)
    _dvc("pull", "-q")
    assert Path("artifacts/candidate/weights.safetensors").exists()
    assert "up to date" in _dvc("status")
    # Re-running fine-tuning and evaluation from the pulled backbone gives the same metrics.
    _dvc("repro", "--force", "--single-item", "finetune")
    _dvc("repro", "--force", "--single-item", "evaluate")
    original = yaml.safe_load((project / "artifacts/evaluation.json").read_text())
    again = yaml.safe_load(Path("artifacts/evaluation.json").read_text())
    assert again["auprc"] == original["auprc"] and again["auroc"] == original["auroc"]

    monkeypatch.chdir(project)
    _a_scheduled_batch_keeps_its_checks_apart_and_versions_the_window()


def _a_scheduled_batch_keeps_its_checks_apart_and_versions_the_window() -> None:
    """A batch from the incoming folder, skipped in the cooldown: its checks go to a folder
    of their own, it waits in the versioned ``pending/`` folder, and ``dvc status`` stays
    clean: fine-tuning's window still holds exactly what the model learned from."""
    import pandas as pd

    recent = pd.read_parquet("data/recent.parquet")
    later = recent.tail(1000).assign(
        transaction_id=lambda f: f.transaction_id + 10**7,
        timestamp=lambda f: f.timestamp + pd.Timedelta(days=28),
    )
    Path("data/incoming").mkdir(parents=True)
    later.to_parquet("data/incoming/later.parquet", index=False)
    validation_before = Path("artifacts/validation.json").read_bytes()
    window_before = _lock_out("window")

    once = runner.invoke(app, ["schedule", "--once"])

    assert once.exit_code == 0, once.output
    assert Path("artifacts/validation.json").read_bytes() == validation_before
    assert list(Path("artifacts/checks").glob("*-later/validation.json"))
    assert _lock_out("window") != window_before  # the accepted batch is in the ledger
    assert len(list(Path("data/pending").glob("batch-*.parquet"))) == 1
    assert json.loads(_dvc("status", "--json")) == {}


def _lock_out(stage: str) -> Any:
    return yaml.safe_load(Path("dvc.lock").read_text())["stages"][stage]["outs"]
