"""DVC is the ledger: after `anomalyflow run` the lock is recorded, status clean, remote full."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from anomalyflow.cli import app
from tests.conftest import REPO

runner = CliRunner()


def _dvc(*args: str) -> str:
    env = os.environ | {"DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout + done.stderr


def test_run_records_lock_pushes_and_leaves_nothing_to_reproduce(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    shutil.copy(REPO / "dvc.yaml", "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["synthetic"].update(
        history_rows=6000, recent_rows=4000, holdout_rows=3000, fraud_rate=0.02
    )
    params["pretrain"].update(max_epochs=6, max_steps=150)
    params["finetune"].update(frozen_epochs=2, max_epochs=5, max_steps=150)
    params["runtime"]["progress"] = False
    Path("params.yaml").write_text(yaml.safe_dump(params))
    _dvc("init", "--no-scm", "-q")
    _dvc("remote", "add", "-d", "local", str(tmp_path / "remote"))

    result = runner.invoke(app, ["run"])

    assert result.exit_code == 0, result.output
    assert "DVC: recorded" in result.output
    lock = yaml.safe_load(Path("dvc.lock").read_text())
    assert set(lock["stages"]) == {
        "generate",
        "validate",
        "drift",
        "pretrain",
        "finetune",
        "evaluate",
        "gate",
    }
    assert lock["stages"]["pretrain"]["params"]["params.yaml"]["runtime.seed"] == 0
    assert "up to date" in _dvc("status")
    assert "up to date" in _dvc("repro")
    assert any((tmp_path / "remote").rglob("*"))
    assert "auprc" in _dvc("metrics", "show")
