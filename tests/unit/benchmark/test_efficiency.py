"""The label-efficiency curve reads each report's means; a file it cannot use is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anomalyflow.benchmark.efficiency import curves, read_points
from anomalyflow.benchmark.peers import BEST_PEER
from anomalyflow.benchmark.protocol import Outcome
from anomalyflow.benchmark.report import summarize
from anomalyflow.cli import app

runner = CliRunner()


def _report(tmp_path: Path, labels: int | None, ratio: float, auprc: dict[str, float]) -> Path:
    """A report as ``anomalyflow benchmark`` writes it, its summary from ``summarize``."""
    outcomes = [
        Outcome(f"set{d}", seed, method, 0.8, value + 0.01 * d, 1.0, 0.9, 0.1)
        for method, value in auprc.items()
        for d in range(6)
        for seed in range(2)
    ]
    name = f"benchmark-labels-{labels}.json" if labels is not None else f"ratio-{ratio}.json"
    path = tmp_path / name
    path.write_text(json.dumps({"summary": summarize(outcomes, ratio, labels)}))
    return path


@pytest.fixture
def reports(tmp_path: Path) -> list[Path]:
    labeled = {"catboost": 0.5, "devnet": 0.4, "prenet": 0.3, BEST_PEER: 0.6}
    return [
        _report(tmp_path, None, 0.0, {"anomalyflow": 0.30, "isolation_forest": 0.35}),
        _report(tmp_path, 5, 0.05, {"anomalyflow": 0.55, **labeled}),
        _report(tmp_path, 10, 0.05, {"anomalyflow": 0.65, **labeled, "prenet": 0.45}),
    ]


def test_each_curve_point_is_its_reports_mean_auprc(reports: list[Path]) -> None:
    drawn = {c.method: c.points for c in curves(read_points(reports))}
    assert drawn["anomalyflow"] == pytest.approx({0: 0.325, 5: 0.575, 10: 0.675})
    assert drawn["catboost"] == pytest.approx({5: 0.525, 10: 0.525})
    assert drawn[BEST_PEER] == pytest.approx({5: 0.625, 10: 0.625})
    assert "devnet" in drawn and "prenet" not in drawn  # the better deep peer over the points


def test_the_command_writes_the_plot(reports: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "plots" / "efficiency.png"
    result = runner.invoke(app, ["benchmark-efficiency", *map(str, reports), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000


def test_a_ratio_run_a_duplicate_or_a_broken_report_is_refused(
    reports: list[Path], tmp_path: Path
) -> None:
    ratio = _report(tmp_path, None, 0.05, {"anomalyflow": 0.6})
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"summary": {"label_ratio": 0, "labels": 5}}))
    out = tmp_path / "efficiency.png"
    for bad, field in [(ratio, "label_ratio"), (broken, "summary.methods"), (reports[1], "5")]:
        args = ["benchmark-efficiency", *map(str, reports[1:]), str(bad), "--out", str(out)]
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and field in result.output, result.output
        assert str(bad) in result.output and not out.exists()
