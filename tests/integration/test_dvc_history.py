"""`dvc metrics diff`, `params diff` and `plots diff` compare two runs across git commits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.test_dvc_ledger import _dvc, small_pipeline

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
}


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True, env=os.environ | GIT_ENV)


def _run() -> None:
    """`anomalyflow run` in its own process, as people run it twice (DVC logs per process)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-m", "anomalyflow", "run"],
        capture_output=True,
        text=True,
        env=os.environ | {"PATH": path},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DVC: recorded" in done.stdout


def test_two_runs_compare_with_dvc_diff_across_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    params = small_pipeline()
    _git("init", "-q")
    _dvc("init", "-q")
    _dvc("remote", "add", "-d", "local", str(tmp_path / "remote"))
    Path(".gitignore").write_text("/.bentoml/\n/gx/\n")

    _run()
    first_auprc = json.loads(Path("artifacts/evaluation.json").read_text())["auprc"]
    _git("add", "-A")
    _git("commit", "-qm", "first run")

    params["finetune"]["max_epochs"] = 2
    Path("params.yaml").write_text(yaml.safe_dump(params))
    _run()

    changed = json.loads(_dvc("params", "diff", "HEAD", "--json"))
    assert changed["params.yaml"]["finetune.max_epochs"] == {"old": 5, "new": 2, "diff": -3}
    metrics = json.loads(_dvc("metrics", "diff", "HEAD", "--all", "--json"))
    assert set(metrics) >= {"artifacts/metrics/holdout.json", "artifacts/metrics/gate.json"}
    auprc = metrics["artifacts/metrics/holdout.json"]["auprc"]
    assert set(auprc) == {"old", "new", "diff"}
    current = json.loads(Path("artifacts/evaluation.json").read_text())
    assert auprc["old"] == pytest.approx(first_auprc)
    assert auprc["new"] == pytest.approx(current["auprc"])
    plots = json.loads(_dvc("plots", "diff", "HEAD", "--json"))["data"]
    for name in ("artifacts/plots/pr.json", "artifacts/plots/roc.json"):
        (plot,) = plots[name]
        assert set(plot["revisions"]) == {"workspace", "HEAD"}
        assert {p["rev"] for p in plot["content"]["data"]["values"]} == {"workspace", "HEAD"}
