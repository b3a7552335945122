"""Threshold fitting: each method delivers the operating point it promises."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from anomalyflow.evaluation.threshold import fit_threshold, flag
from anomalyflow.params import ThresholdParams


def _scored(rows: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Continuous scores where positives (5%) tend to score higher."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < 0.05).astype(int)
    return rng.normal(size=rows) + 2.0 * labels, labels


def test_flag_includes_a_score_equal_to_the_threshold() -> None:
    assert flag(np.array([0.1, 0.5, 0.9]), 0.5).tolist() == [False, True, True]


@pytest.mark.parametrize("rate", [0.01, 0.07, 0.29, 0.5, 1.0])
def test_alert_rate_flags_that_share_of_rows(rate: float) -> None:
    scores, _ = _scored(rows=1000)
    threshold = fit_threshold(scores, None, ThresholdParams(method="alert_rate", alert_rate=rate))
    assert flag(scores, threshold).sum() == round(rate * 1000)


def test_alert_rate_never_exceeds_the_budget_when_scores_tie() -> None:
    scores = np.array([5.0, 4.0, 4.0, 4.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    threshold = fit_threshold(scores, None, ThresholdParams(method="alert_rate", alert_rate=0.2))
    assert flag(scores, threshold).sum() == 1


@pytest.mark.parametrize("target", [0.001, 0.01, 0.05, 0.2])
def test_false_positive_rate_is_met_on_normal_rows_and_close_to_target(target: float) -> None:
    scores, labels = _scored(rows=20_000)
    params = ThresholdParams(method="false_positive_rate", false_positive_rate=target)
    flagged = flag(scores, fit_threshold(scores, labels, params))
    negatives = int((labels == 0).sum())
    realised = flagged[labels == 0].mean()
    assert realised <= target
    assert realised > target - 1.5 / negatives


def test_false_positive_rate_holds_with_tied_scores() -> None:
    rng = np.random.default_rng(3)
    labels = (rng.random(2000) < 0.1).astype(int)
    scores = np.round(rng.normal(size=2000) + labels, 1)  # many ties
    params = ThresholdParams(method="false_positive_rate", false_positive_rate=0.05)
    flagged = flag(scores, fit_threshold(scores, labels, params))
    assert flagged[labels == 0].mean() <= 0.05


def test_best_f1_beats_every_other_candidate_threshold() -> None:
    scores, labels = _scored(rows=2000)
    best = fit_threshold(scores, labels, ThresholdParams(method="best_f1"))
    best_f1 = f1_score(labels, flag(scores, best))
    others = [f1_score(labels, flag(scores, t)) for t in np.unique(scores)[::7]]
    assert best_f1 >= max(others)
    assert best_f1 > 0.5


def test_best_f1_separates_perfectly_separable_scores() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 1])
    threshold = fit_threshold(scores, labels, ThresholdParams(method="best_f1"))
    assert flag(scores, threshold).tolist() == [False, False, False, True, True]


@pytest.mark.parametrize("method", ["false_positive_rate", "best_f1"])
def test_methods_needing_labels_refuse_none(method: str) -> None:
    with pytest.raises(ValueError, match="needs labels"):
        fit_threshold(np.arange(5.0), None, ThresholdParams(method=method))  # type: ignore[arg-type]


def test_best_f1_refuses_labels_without_positives() -> None:
    with pytest.raises(ValueError, match="label-1"):
        fit_threshold(np.arange(5.0), np.zeros(5), ThresholdParams(method="best_f1"))


def test_false_positive_rate_refuses_labels_without_negatives() -> None:
    params = ThresholdParams(method="false_positive_rate")
    with pytest.raises(ValueError, match="label-0"):
        fit_threshold(np.arange(5.0), np.ones(5), params)


@pytest.mark.parametrize(
    ("labels", "match"),
    [(np.array([0, 1, 2, 0]), "0 or 1"), (np.array([0, 1, 0]), "lengths must match")],
)
def test_bad_labels_are_refused(labels: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit_threshold(np.arange(4.0), labels, ThresholdParams(method="best_f1"))


def test_nan_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        fit_threshold(np.array([0.1, np.nan]), None, ThresholdParams())
