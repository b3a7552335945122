"""The few-label protocol gives every method the same, honest split."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from anomalyflow.benchmark.protocol import Budget, Outcome, isolation_forest, make_split, run_unit
from anomalyflow.benchmark.report import by_test_anomalies, summarize
from tests.conftest import make_blobs


def _data(rows: int = 5000, share: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(rows) < share).astype(np.int64)
    x = rng.normal(size=(rows, 3)) + y[:, None] * 3
    return x, y


def test_partial_labels_cover_the_ratio_of_train_anomalies_only() -> None:
    x, y = _data()
    split = make_split(x, y, label_ratio=0.05, seed=0, row_cap=10_000, test_size=0.3)
    train_anomalies = int(y.sum() - split.y_test.sum())
    assert len(split.x_test) == 1500
    assert split.y_partial.sum() == max(1, round(0.05 * train_anomalies))
    assert abs(split.y_test.mean() - y.mean()) < 0.005  # stratified


def test_at_least_one_label_and_none_at_ratio_zero() -> None:
    x, y = _data(rows=400, share=0.03)
    assert make_split(x, y, 0.01, 0, 10_000, 0.3).y_partial.sum() == 1
    assert make_split(x, y, 0.0, 0, 10_000, 0.3).y_partial.sum() == 0


def test_same_seed_same_split_and_row_cap_keeps_the_anomaly_share() -> None:
    x, y = _data(rows=20_000)
    a = make_split(x, y, 0.05, 3, 2000, 0.3)
    b = make_split(x, y, 0.05, 3, 2000, 0.3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_partial, b.y_partial)
    assert len(a.x_train) + len(a.x_test) == 2000
    assert abs(a.y_test.mean() - y.mean()) < 0.01


def test_summary_counts_paired_wins_and_losses() -> None:
    outcomes = []
    for i, dataset in enumerate("abcdef"):
        outcomes.append(Outcome(dataset, 0, "anomalyflow", 0.9, 0.5 + i / 100, 1.0, 0.9, 0.1))
        outcomes.append(Outcome(dataset, 0, "ecod", 0.8, 0.4 if i < 5 else 0.9, 0.1, 0.05, 0.05))
    entry = summarize(outcomes, label_ratio=0.05)["methods"]["ecod"]
    assert (entry["anomalyflow_wins"], entry["anomalyflow_losses"]) == (5, 1)
    assert 0 < entry["wilcoxon_p"] < 1


def test_each_outcome_records_the_anomalies_in_its_test_rows(tmp_path: Path) -> None:
    x, y = make_blobs(rows=600, features=4, anomaly_share=0.1)
    np.savez(tmp_path / "blobs.npz", X=x, y=y)
    budget = Budget(0.2, None, row_cap=10_000, test_size=0.3)
    (outcome,) = run_unit(tmp_path / "blobs.npz", 0, {"iforest": isolation_forest}, budget)
    split = make_split(x, y, 0.2, 0, 10_000, 0.3)
    assert outcome.test_anomalies == split.y_test.sum() > 0


def test_means_split_sets_with_few_test_anomalies_from_the_rest() -> None:
    def outcome(dataset: str, method: str, auprc: float, test_anomalies: int) -> Outcome:
        return Outcome(dataset, 0, method, 0.5, auprc, 1.0, 0.9, 0.1, test_anomalies=test_anomalies)

    outcomes = [
        outcome("tiny", "anomalyflow", 0.2, 3),
        outcome("tiny", "best_peer", 1.0, 3),
        outcome("large", "anomalyflow", 0.8, 40),
        outcome("large", "best_peer", 0.7, 40),
        outcome("larger", "anomalyflow", 0.6, 400),
        outcome("larger", "best_peer", 0.6, 400),
    ]
    split = by_test_anomalies(outcomes, "auprc")
    assert split["fewer than 10"] == {
        "datasets": 1,
        "means": {"anomalyflow": 0.2, "best_peer": 1.0},
    }
    assert split["10 or more"]["datasets"] == 2
    assert split["10 or more"]["means"] == pytest.approx({"anomalyflow": 0.7, "best_peer": 0.65})
    assert summarize(outcomes, label_ratio=0.05)["by_test_anomalies"] == split
    unrecorded = [replace(o, test_anomalies=0) for o in outcomes]  # a journal from before
    assert by_test_anomalies(unrecorded, "auprc") == {}
    assert "by_test_anomalies" not in summarize(unrecorded, label_ratio=0.05)
