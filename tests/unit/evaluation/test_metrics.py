"""Evaluation metrics and the JSON report gates and people read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from anomalyflow.evaluation.metrics import (
    EvaluationReport,
    _weighted_average_precision,
    evaluate,
    write_evaluation,
)
from anomalyflow.params import EvaluationParams

FAST = EvaluationParams(bootstrap_samples=50)


def _scored(rows: int, seed: int = 0, rate: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Labels and overlapping scores: positives tend to score higher."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < rate).astype(int)
    return labels, rng.normal(size=rows) + 1.5 * labels


def test_hand_computed_confusion_matrix_and_threshold_metrics() -> None:
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.5, 0.6, 0.8, 0.9])
    report = evaluate(labels, scores, threshold=0.6, params=FAST)
    # Flagged (score >= 0.6): negatives 0.6, 0.7; positives 0.6, 0.8, 0.9.
    assert report.confusion_matrix == {"tn": 4, "fp": 2, "fn": 1, "tp": 3}
    assert report.precision == pytest.approx(3 / 5)
    assert report.recall == pytest.approx(3 / 4)
    assert report.f1 == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert (report.rows, report.positives, report.threshold) == (10, 4, 0.6)


def test_metrics_match_scikit_learn() -> None:
    labels, scores = _scored(rows=3000)
    report = evaluate(labels, scores, threshold=1.0, params=FAST)
    predicted = scores >= 1.0
    assert report.precision == pytest.approx(precision_score(labels, predicted))
    assert report.recall == pytest.approx(recall_score(labels, predicted))
    assert report.f1 == pytest.approx(f1_score(labels, predicted))
    assert report.auroc == pytest.approx(roc_auc_score(labels, scores))
    assert report.auprc == pytest.approx(average_precision_score(labels, scores))


def test_precision_at_alert_budget_counts_the_top_scores() -> None:
    labels = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    scores = np.array([10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    params = EvaluationParams(alert_budget=0.25, bootstrap_samples=10)  # ceil(2.5) = 3 rows
    assert evaluate(labels, scores, 5.0, params).precision_at_alert_budget == pytest.approx(2 / 3)


def test_precision_at_alert_budget_splits_ties_at_the_cut_fairly() -> None:
    labels = np.array([1, 1, 0, 0, 1, 0])
    scores = np.array([3.0, 2.0, 2.0, 2.0, 2.0, 1.0])
    params = EvaluationParams(alert_budget=0.5, bootstrap_samples=10)  # 3 rows: 1 + 2 of 4 tied
    report = evaluate(labels, scores, 2.0, params)
    assert report.precision_at_alert_budget == pytest.approx((1 + 2 * 2 / 4) / 3)


def test_recall_at_target_fpr_is_the_best_recall_within_the_target() -> None:
    labels = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    scores = np.arange(12.0)[::-1]  # ranks: pos, pos, neg, pos, ..., pos last
    params = EvaluationParams(target_false_positive_rate=0.15, bootstrap_samples=10)
    # One of 8 negatives (FPR 0.125 <= 0.15) lets the cut reach the third positive.
    assert evaluate(labels, scores, 5.0, params).recall_at_target_fpr == pytest.approx(3 / 4)
    strict = EvaluationParams(target_false_positive_rate=0.1, bootstrap_samples=10)
    assert evaluate(labels, scores, 5.0, strict).recall_at_target_fpr == pytest.approx(2 / 4)


def test_perfect_scores_give_perfect_ranking_metrics() -> None:
    labels = np.array([0, 0, 0, 1, 0, 1, 1, 0])
    report = evaluate(labels, labels * 2.0 + 0.5, threshold=1.0, params=FAST)
    assert report.auroc == 1.0
    assert report.auprc == 1.0
    assert report.auprc_ci_low == report.auprc_ci_high == 1.0
    assert report.f1 == 1.0


def test_ci_contains_the_estimate_and_narrows_with_more_rows() -> None:
    widths = []
    for rows in (1000, 20_000):
        labels, scores = _scored(rows=rows, seed=1)
        report = evaluate(labels, scores, 1.0, EvaluationParams(bootstrap_samples=200))
        assert report.auprc_ci_low <= report.auprc <= report.auprc_ci_high
        widths.append(report.auprc_ci_high - report.auprc_ci_low)
    assert widths[1] < widths[0] / 2


def test_bootstrap_is_reproducible_for_a_seed() -> None:
    labels, scores = _scored(rows=2000)
    first = evaluate(labels, scores, 1.0, FAST, seed=3)
    assert evaluate(labels, scores, 1.0, FAST, seed=3) == first
    assert evaluate(labels, scores, 1.0, FAST, seed=4).auprc_ci_low != first.auprc_ci_low


def test_bootstrap_average_precision_matches_scikit_learn_with_ties() -> None:
    rng = np.random.default_rng(5)
    labels = (rng.random(400) < 0.2).astype(np.int8)
    scores = np.round(rng.normal(size=400) + labels, 1)  # many ties
    weights = rng.integers(0, 3, size=(4, 400))
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    ends = np.append(np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]), 399)
    got = _weighted_average_precision(weights[:, order], labels[order], ends)
    expected = [average_precision_score(labels, scores, sample_weight=w) for w in weights]
    np.testing.assert_allclose(got, expected)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.array([0, 1, 2, 1]), "0 or 1"),
        (np.array([0.0, 1.0, 0.5, 1.0]), "0 or 1"),
        (np.array([0, 1, 1]), "lengths must match"),
        (np.zeros(4), "no label-1"),
        (np.ones(4), "no label-0"),
    ],
)
def test_bad_labels_are_refused(labels: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate(labels, np.arange(4.0), 1.0, FAST)


def test_boolean_labels_are_accepted() -> None:
    labels = np.array([False, True, False, True])
    assert evaluate(labels, np.arange(4.0), 1.0, FAST).positives == 2


def test_report_round_trips_through_json(tmp_path: Path) -> None:
    labels, scores = _scored(rows=1000)
    report = evaluate(labels, scores, 1.0, FAST)
    path = tmp_path / "reports" / "evaluation.json"
    write_evaluation(report, path)
    loaded = json.loads(path.read_text())
    assert loaded == report.to_dict()
    assert EvaluationReport(**loaded) == report
    assert [p.name for p in path.parent.iterdir()] == ["evaluation.json"]  # no temp file left


def test_write_report_replaces_an_existing_report(tmp_path: Path) -> None:
    path = tmp_path / "evaluation.json"
    path.write_text("stale")
    labels, scores = _scored(rows=500)
    write_evaluation(evaluate(labels, scores, 1.0, FAST), path)
    assert json.loads(path.read_text())["rows"] == 500
