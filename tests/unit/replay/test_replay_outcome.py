"""The replay's after-drift figures: each day judged on the production that served it."""

from __future__ import annotations

import numpy as np
import pytest

from anomalyflow.pipeline.state import RunState
from anomalyflow.replay.outcome import Track

ROWS = 100
BUDGET = 0.02  # the top 2 of 100 rows


def _day(anomaly_score: float, normal_score: float, anomalies: int = 2) -> tuple:
    """One day's truth and a production's scores: its anomalies first, each above the rest."""
    truth = np.zeros(ROWS, dtype=np.int8)
    truth[:anomalies] = 1
    scores = np.where(truth == 1, anomaly_score, normal_score) + np.linspace(0, 1e-3, ROWS)
    return truth, scores


def test_after_drift_figures_judge_each_day_on_its_own_productions_scale() -> None:
    """Two productions that each rank their day perfectly, one scoring far lower than the
    other, are perfect after the drift: pooling their days would rank the second
    model's anomalies below the first one's normal rows."""
    track = Track("daily", None, RunState())  # type: ignore[arg-type]  # figures only
    track.served(0, *_day(0.5, 0.4), BUDGET, drift_day=1)  # before the drift: left out
    track.served(1, *_day(9.0, 8.0), BUDGET, drift_day=1)
    track.served(2, *_day(0.2, 0.1), BUDGET, drift_day=1)  # a newly promoted model
    figures = track.figures()
    assert figures["auprc_after_drift"] == pytest.approx(1.0)
    assert figures["precision_at_alert_budget_after_drift"] == pytest.approx(1.0)


def test_a_day_without_anomalies_leaves_the_after_drift_figures_as_they_are() -> None:
    track = Track("never", None, RunState())  # type: ignore[arg-type]  # figures only
    truth, scores = _day(1.0, 0.0, anomalies=1)
    track.served(1, truth, scores, BUDGET, drift_day=1)  # one of the top 2 is an anomaly
    track.served(2, *_day(1.0, 0.0, anomalies=0), BUDGET, drift_day=1)
    figures = track.figures()
    assert figures["auprc_after_drift"] == pytest.approx(1.0)
    assert figures["precision_at_alert_budget_after_drift"] == pytest.approx(0.5)
    assert len(figures["days"]) == 2


def test_no_day_with_anomalies_after_the_drift_leaves_the_figures_unjudged() -> None:
    track = Track("policy", None, RunState())  # type: ignore[arg-type]  # figures only
    track.served(0, *_day(1.0, 0.0), BUDGET, drift_day=1)
    figures = track.figures()
    assert figures["auprc_after_drift"] is None
    assert figures["precision_at_alert_budget_after_drift"] is None
