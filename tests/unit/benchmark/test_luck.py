"""The luck of the hindsight best peer, measured on resamples of each unit's test rows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from anomalyflow.benchmark.journal import Journal
from anomalyflow.benchmark.luck import best_peer_luck, best_peer_split_luck
from anomalyflow.benchmark.protocol import Budget, Outcome, isolation_forest, make_split, run_unit
from anomalyflow.benchmark.report import summarize
from anomalyflow.benchmark.resampling import resampled_auprc, stratified_counts
from tests.conftest import make_blobs


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=2, max_size=60).filter(
        lambda rows: 0 < sum(label for _, label in rows) < len(rows)
    ),
    st.integers(0, 1000),
)
def test_resampled_auprc_is_average_precision_weighted_by_the_draws(
    rows: list[tuple[int, bool]], seed: int
) -> None:
    scores = np.array([score for score, _ in rows], dtype=float)  # few values: many ties
    y = np.array([label for _, label in rows], dtype=int)
    counts = stratified_counts(y, seed, resamples=7)
    expected = [average_precision_score(y, scores, sample_weight=w) for w in counts]
    np.testing.assert_allclose(resampled_auprc(y, scores, counts), expected, atol=1e-12)


def test_each_resample_keeps_the_test_rows_counts_of_anomalies_and_normal_rows() -> None:
    y = np.r_[np.ones(3, int), np.zeros(97, int)]
    counts = stratified_counts(y, seed=4)
    assert counts.shape == (200, 100)
    assert (counts[:, y == 1].sum(axis=1) == 3).all()
    assert (counts[:, y == 0].sum(axis=1) == 97).all()
    assert len({tuple(c) for c in counts}) > 150  # draws differ
    np.testing.assert_array_equal(counts, stratified_counts(y, seed=4))


def test_every_method_of_a_unit_is_weighed_on_the_same_resamples_and_kept_in_the_journal(
    tmp_path: Path,
) -> None:
    x, y = make_blobs(rows=600, features=4, anomaly_share=0.1)
    np.savez(tmp_path / "blobs.npz", X=x, y=y)
    budget = Budget(0.2, None, row_cap=10_000, test_size=0.3)
    chosen = {"first": isolation_forest, "again": isolation_forest}
    first, again = run_unit(tmp_path / "blobs.npz", 0, chosen, budget)

    assert len(first.resampled_auprc) == 200
    assert first.resampled_auprc == again.resampled_auprc  # same scores, same resamples
    assert np.mean(first.resampled_auprc) == pytest.approx(first.auprc, abs=0.05)
    split = make_split(x, y, 0.2, 0, 10_000, 0.3)
    counts = stratified_counts(split.y_test, 0)
    assert (counts[:, split.y_test == 1].sum(axis=1) == first.test_anomalies).all()

    journal = Journal.start(tmp_path / "journal.jsonl", {"run": 1}, resume=False)
    journal.record([first, again])
    assert Journal.start(journal.path, {"run": 1}, resume=True).units[("blobs", 0)] == [
        first,
        again,
    ]


def _outcomes(
    dataset: str,
    method: str,
    level: float,
    noise: float,
    rng: np.random.Generator,
    seeds: int = 3,
) -> list[Outcome]:
    """``seeds`` seeds of one method whose AUPRC is ``level`` give or take ``noise``."""
    result = []
    for seed in range(seeds):
        resampled = tuple(np.clip(level + noise * rng.standard_normal(200), 0, 1).tolist())
        observed = float(np.clip(level + noise * rng.standard_normal(), 0, 1))
        result.append(
            Outcome(dataset, seed, method, 0.5, observed, 1.0, 0.9, 0.1, resampled_auprc=resampled)
        )
    return result


def test_nine_peers_equal_but_for_noise_owe_the_best_ones_lead_to_luck() -> None:
    rng = np.random.default_rng(0)
    outcomes = [
        o
        for dataset in ("a", "b", "c", "d")
        for peer in range(9)
        for o in _outcomes(dataset, f"peer{peer}", 0.5, 0.1, rng)
    ]
    luck = best_peer_luck(outcomes)
    # the best of nine draws of a mean of three, each N(0.5, 0.1): 0.5 + 1.49 * 0.1 / sqrt(3)
    assert luck["luck"] == pytest.approx(1.49 * 0.1 / np.sqrt(3), abs=0.015)
    assert luck["hindsight_best_peer"] - luck["luck"] == luck["best_peer_less_luck"]
    assert luck["best_peer_less_luck"] == pytest.approx(0.5, abs=0.03)


def test_a_peer_far_ahead_everywhere_owes_nothing_to_luck() -> None:
    rng = np.random.default_rng(1)
    outcomes = [
        *_outcomes("a", "strong", 0.9, 0.01, rng),
        *_outcomes("a", "weak", 0.3, 0.01, rng),
        *_outcomes("b", "strong", 0.8, 0.01, rng),
        *_outcomes("b", "weak", 0.2, 0.01, rng),
    ]
    assert best_peer_luck(outcomes)["luck"] == pytest.approx(0.0, abs=1e-12)


def test_anomalyflow_equal_to_the_best_peer_is_never_above_it_and_clearly_better_always_is() -> (
    None
):
    rng = np.random.default_rng(2)
    peers = [*_outcomes("a", "p", 0.6, 0.05, rng), *_outcomes("b", "p", 0.4, 0.05, rng)]
    equal = [replace(o, method="anomalyflow") for o in peers]
    luck = best_peer_luck([*peers, *equal])
    assert luck["anomalyflow_above_hindsight_share"] == 0.0
    assert luck["anomalyflow_above_best_on_average_share"] == 0.0

    better = [replace(o, resampled_auprc=tuple(v + 0.2 for v in o.resampled_auprc)) for o in equal]
    luck = best_peer_luck([*peers, *better])
    assert luck["anomalyflow_above_hindsight_share"] == 1.0
    assert luck["anomalyflow_above_best_on_average_share"] == 1.0


def test_runs_journaled_before_resamples_were_recorded_report_no_luck() -> None:
    rng = np.random.default_rng(3)
    outcomes = [*_outcomes("a", "p", 0.6, 0.05, rng), *_outcomes("a", "q", 0.5, 0.05, rng)]
    assert "best_peer_luck" in summarize(outcomes, label_ratio=0.05)
    before = [replace(o, resampled_auprc=()) for o in outcomes]
    assert best_peer_luck(before) == {}
    assert "best_peer_luck" not in summarize(before, label_ratio=0.05)


def test_nine_peers_equal_but_for_the_split_owe_the_best_ones_lead_to_the_split() -> None:
    rng = np.random.default_rng(4)
    outcomes = [
        o
        for dataset in "abcdefgh"
        for peer in range(9)
        for o in _outcomes(dataset, f"peer{peer}", 0.5, 0.1, rng, seeds=6)
    ]
    luck = best_peer_split_luck(outcomes)
    assert luck["seeds_per_half"] == 3
    # picked on three seeds: the best of nine means of three draws of N(0.5, 0.1)
    assert luck["hindsight_best_peer"] == pytest.approx(0.5 + 1.49 * 0.1 / np.sqrt(3), abs=0.02)
    assert luck["fresh_best_peer"] == pytest.approx(0.5, abs=0.02)  # on fresh seeds: average
    assert luck["luck"] == pytest.approx(luck["hindsight_best_peer"] - luck["fresh_best_peer"])


def test_a_peer_far_ahead_keeps_its_lead_on_fresh_splits_and_anomalyflow_is_paired_with_it() -> (
    None
):
    rng = np.random.default_rng(5)
    outcomes = [
        o
        for dataset, strong in (("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6), ("e", 0.5))
        for method, level in (("strong", strong), ("weak", strong - 0.4))
        for o in _outcomes(dataset, method, level, 0.01, rng, seeds=4)
    ]
    behind = [
        replace(o, method="anomalyflow", auprc=o.auprc - 0.05)
        for o in outcomes
        if o.method == "strong"
    ]
    luck = best_peer_split_luck([*outcomes, *behind])
    assert luck["seeds_per_half"] == 2
    assert luck["luck"] == pytest.approx(0.0, abs=0.02)
    assert luck["anomalyflow_less_fresh_best_peer"] == pytest.approx(-0.05, abs=1e-9)
    assert (luck["anomalyflow_wins"], luck["anomalyflow_losses"]) == (0, 5)


def test_the_split_luck_needs_an_even_number_of_seeds() -> None:
    rng = np.random.default_rng(6)
    for seeds, reported in ((1, False), (3, False), (2, True), (6, True)):
        outcomes = [
            *_outcomes("a", "p", 0.6, 0.05, rng, seeds),
            *_outcomes("a", "q", 0.5, 0.05, rng, seeds),
        ]
        assert ("best_peer_split_luck" in summarize(outcomes, label_ratio=0.05)) is reported
