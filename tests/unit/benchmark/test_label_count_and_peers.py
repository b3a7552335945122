"""ADGym's label-count budget, optional peers that may be missing, and the best peer."""

from __future__ import annotations

import numpy as np
import pytest

from anomalyflow.benchmark import peers
from anomalyflow.benchmark.peers import (
    BEST_PEER,
    HELD_OUT_BEST_PEER,
    OPTIONAL_PEERS,
    OptionalPeer,
    best_peer_choices,
    importable,
    optional_peers,
    protocol_methods,
    short_of_labels,
    with_best_peer,
    with_held_out_best_peer,
)
from anomalyflow.benchmark.protocol import Outcome, isolation_forest, make_split
from anomalyflow.detector import DetectorSettings


def _data(rows: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(rows) < share).astype(np.int64)
    return rng.normal(size=(rows, 3)) + y[:, None] * 3, y


@pytest.mark.parametrize("labels", [5, 10, 25])
def test_label_count_labels_exactly_n_train_anomalies(labels: int) -> None:
    x, y = _data(rows=5000, share=0.04)
    split = make_split(x, y, 0.05, seed=1, row_cap=10_000, test_size=0.3, labels=labels)
    assert split.y_partial.sum() == labels
    by_ratio = make_split(x, y, 0.05, seed=1, row_cap=10_000, test_size=0.3)
    np.testing.assert_array_equal(split.x_train, by_ratio.x_train)  # same rows, other budget
    np.testing.assert_array_equal(split.y_test, by_ratio.y_test)
    # only true anomalies keep a label: their rows sit 3 away from the normal cloud
    assert (split.x_train[split.y_partial == 1].mean(axis=1) > 1).all()


def test_label_count_labels_all_anomalies_when_fewer_and_is_seeded() -> None:
    x, y = _data(rows=300, share=0.03)
    split = make_split(x, y, 0.05, seed=0, row_cap=10_000, test_size=0.3, labels=25)
    train_anomalies = int(y.sum() - split.y_test.sum())
    assert 0 < train_anomalies < 25
    assert split.y_partial.sum() == train_anomalies
    a = make_split(*_data(5000, 0.04), 0.05, seed=2, row_cap=10_000, test_size=0.3, labels=5)
    b = make_split(*_data(5000, 0.04), 0.05, seed=2, row_cap=10_000, test_size=0.3, labels=5)
    c = make_split(*_data(5000, 0.04), 0.05, seed=3, row_cap=10_000, test_size=0.3, labels=5)
    np.testing.assert_array_equal(a.y_partial, b.y_partial)
    assert not np.array_equal(a.y_partial, c.y_partial)
    assert make_split(x, y, 0.05, 0, 10_000, 0.3, labels=0).y_partial.sum() == 0


def test_short_of_labels_names_the_splits_with_fewer_anomalies() -> None:
    outcomes = [_outcome("a", "ecod", 0.5, labeled=10), _outcome("b", "ecod", 0.5, labeled=4)]
    assert short_of_labels(outcomes, 10) == {"b seed 0": 4}


def test_an_unavailable_peer_is_skipped_with_its_install_command(
    fast_settings: DetectorSettings,
) -> None:
    choice = protocol_methods(fast_settings, 0.05, labels=None, available=lambda _: False)
    assert set(choice.skipped) == set(OPTIONAL_PEERS)
    assert all(command.startswith("pip install") for command in choice.skipped.values())
    assert {"anomalyflow", "catboost", "logistic_regression"} <= set(choice.run)
    assert not set(choice.run) & set(OPTIONAL_PEERS)
    unlabeled = protocol_methods(fast_settings, 0.05, labels=0, available=lambda _: False)
    assert unlabeled.skipped == {} and "catboost" not in unlabeled.run


def test_a_peer_whose_library_does_not_import_is_skipped_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = OptionalPeer("anomalyflow_no_such_library", "pip install nothing", isolation_forest)
    monkeypatch.setitem(peers.OPTIONAL_PEERS, "ghost", missing)
    assert not importable("anomalyflow_no_such_library")
    choice = optional_peers()
    assert choice.skipped["ghost"] == "pip install nothing"
    assert "ghost" not in choice.run


def test_best_peer_is_the_best_peer_per_data_set_never_anomalyflow() -> None:
    outcomes = [
        _outcome("a", "anomalyflow", 0.9),
        _outcome("a", "catboost", 0.6),
        _outcome("a", "xgbod", 0.7),
        _outcome("b", "anomalyflow_scratch", 0.9),
        _outcome("b", "catboost", 0.8),
        _outcome("b", "xgbod", 0.3),
    ]
    assert best_peer_choices(outcomes, "auprc") == {"a": "xgbod", "b": "catboost"}
    best = [o for o in with_best_peer(outcomes, "auprc") if o.method == BEST_PEER]
    assert {(o.dataset, o.auprc) for o in best} == {("a", 0.7), ("b", 0.8)}


def test_the_held_out_best_peer_is_chosen_on_the_other_seeds_only() -> None:
    per_seed = {"xgbod": [0.9, 0.1, 0.1], "catboost": [0.2, 0.5, 0.5], "anomalyflow": [1.0] * 3}
    outcomes = [
        _outcome("a", method, auprc, seed=seed)
        for method, scores in per_seed.items()
        for seed, auprc in enumerate(scores)
    ]
    with_both = with_held_out_best_peer(with_best_peer(outcomes, "auprc"), "auprc")

    def scores(name: str) -> list[float]:
        return [o.auprc for o in sorted(with_both, key=lambda o: o.seed) if o.method == name]

    assert scores(BEST_PEER) == [0.2, 0.5, 0.5]  # catboost: best mean, in hindsight
    # seed 0 is scored by the best on seeds 1-2 (catboost), seeds 1 and 2 by xgbod
    assert scores(HELD_OUT_BEST_PEER) == [0.2, 0.1, 0.1]
    one_seed = [o for o in outcomes if o.seed == 0]
    assert with_held_out_best_peer(one_seed, "auprc") == one_seed  # no other seed to choose on


def _outcome(dataset: str, method: str, auprc: float, labeled: int = 1, seed: int = 0) -> Outcome:
    return Outcome(dataset, seed, method, 0.5, auprc, 1.0, 0.9, 0.1, labeled=labeled)
