"""Two runs in one project must not share files: the second is refused, nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app
from anomalyflow.params import load_params
from anomalyflow.paths import ArtifactPaths
from anomalyflow.pipeline.state import exclusive_run
from tests.integration.test_main_job import SMALL

runner = CliRunner()


def test_a_run_started_while_another_holds_the_project_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(SMALL)
    params = load_params("params.yaml")
    paths = ArtifactPaths.from_params(params.paths, params.data)
    with exclusive_run(paths) as first:  # the first run, still training
        second = runner.invoke(app, ["run"])
        stage = runner.invoke(app, ["pretrain"])
        assert list(paths.runs.iterdir()) == [first]  # the refused runs made no folder
        assert list(first.rglob("*.ckpt")) == []  # and wrote nothing in the first's
    assert second.exit_code == 2, second.output
    assert stage.exit_code == 2, stage.output
    assert not paths.backbone.exists() and not paths.candidate.exists()
    assert not Path(".bentoml").exists()
