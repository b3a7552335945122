"""`anomalyflow replay`: a drifting stream through the scheduled flow's steps, three policies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app
from tests.integration.test_main_job import SMALL

runner = CliRunner()


def test_a_short_replay_writes_each_policys_figures_and_daily_retrains_every_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(SMALL + "gate: {bootstrap_samples: 50}\n")
    result = runner.invoke(
        app, ["replay", "--days", "6", "--rows-per-day", "1000", "--json", "replay.json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(Path("replay.json").read_text())
    assert figures["drift_day"] == 3
    policies = figures["policies"]
    assert set(policies) == {"never", "daily", "policy"}
    for name, policy in policies.items():
        assert len(policy["days"]) == 6, name
        assert 0 <= policy["auprc_after_drift"] <= 1
        assert 0 <= policy["precision_at_alert_budget_after_drift"] <= 1
        assert policy["promotions"] <= policy["retrains"]
    assert policies["daily"]["retrains"] == 6
    assert all(day["trained"] for day in policies["daily"]["days"])
    assert policies["never"]["retrains"] == 0
    assert policies["policy"]["retrains"] <= policies["daily"]["retrains"]
    # The project's own figures and plot, which its next review page shows.
    assert json.loads(Path("artifacts/replay/replay.json").read_text()) == figures
    assert Path("artifacts/replay/replay.png").read_bytes()[:4] == b"\x89PNG"
    # Every day joined the window and the labels due (days 0-2) arrived through feedback.
    window = Path("artifacts/replay/work/data/window")
    assert len(list(window.glob("batch-*.parquet"))) == 1 + 6
    assert (window / "labels.parquet").exists()


def test_replay_on_your_own_files_is_refused_naming_the_key_and_changing_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.test_user_data import user_params, write_sensor_data

    monkeypatch.chdir(tmp_path)
    Path("mydata").mkdir()
    write_sensor_data(Path("mydata"))
    Path("params.yaml").write_text(user_params())
    result = runner.invoke(app, ["replay", "--days", "2"])
    assert result.exit_code == 2
    assert "data.source" in result.output
    assert not Path("artifacts/replay").exists()
