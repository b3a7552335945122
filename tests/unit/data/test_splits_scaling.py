"""Splits keep what evaluation relies on; the scaler learns only from its training rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anomalyflow.data.scaling import RobustScaler
from anomalyflow.data.splits import stratified_split, subsample_stratified, time_split


def labels(rows: int, share: float, seed: int = 0) -> np.ndarray:
    y = np.zeros(rows, dtype=np.int64)
    y[np.random.default_rng(seed).choice(rows, size=int(rows * share), replace=False)] = 1
    return y


# --- splits ----------------------------------------------------------------------------


def test_stratified_split_keeps_the_anomaly_share_in_both_parts() -> None:
    y = labels(1000, 0.05)

    train, test = stratified_split(y, test_size=0.3, seed=1)

    assert len(test) == 300
    assert abs(y[train].mean() - 0.05) <= 1 / len(train)
    assert abs(y[test].mean() - 0.05) <= 1 / len(test)


def test_stratified_split_is_disjoint_and_covers_every_row() -> None:
    y = labels(500, 0.1)

    train, test = stratified_split(y, test_size=0.25, seed=3)

    assert np.intersect1d(train, test).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(500))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)


def test_stratified_split_is_deterministic_per_seed() -> None:
    y = labels(500, 0.1)

    first = stratified_split(y, test_size=0.25, seed=5)
    again = stratified_split(y, test_size=0.25, seed=5)
    other = stratified_split(y, test_size=0.25, seed=6)

    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_stratified_split_still_splits_with_a_single_anomaly() -> None:
    y = np.zeros(100, dtype=np.int64)
    y[17] = 1  # too few to stratify; the split must not fail

    train, test = stratified_split(y, test_size=0.2, seed=0)

    assert len(train) + len(test) == 100


def test_time_split_puts_exactly_the_latest_rows_in_test() -> None:
    rng = np.random.default_rng(0)
    order = rng.permutation(100)
    timestamps = np.datetime64("2024-01-01T00:00") + order.astype("timedelta64[m]")

    train, test = time_split(timestamps, test_size=0.2)

    assert len(test) == 20
    np.testing.assert_array_equal(test, np.sort(np.flatnonzero(order >= 80)))
    np.testing.assert_array_equal(train, np.sort(np.flatnonzero(order < 80)))
    assert timestamps[train].max() < timestamps[test].min()


def test_subsample_caps_rows_and_keeps_the_label_share() -> None:
    y = labels(10_000, 0.02)

    keep = subsample_stratified(y, max_rows=1000, seed=0)

    assert len(keep) == 1000
    assert len(np.unique(keep)) == 1000
    assert keep.min() >= 0 and keep.max() < 10_000
    assert abs(y[keep].mean() - 0.02) <= 1 / 1000


def test_subsample_keeps_every_row_under_the_cap() -> None:
    np.testing.assert_array_equal(subsample_stratified(labels(50, 0.1), 100, 0), np.arange(50))


# --- RobustScaler ----------------------------------------------------------------------


def train_rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.column_stack([rng.normal(5.0, 2.0, 500), rng.lognormal(0.0, 1.0, 500)])


def test_statistics_come_only_from_the_fitted_rows() -> None:
    train = train_rows()
    scaler = RobustScaler().fit(train)
    before = {k: v.copy() for k, v in scaler.state().items()}

    low, high = np.percentile(train, [25, 75], axis=0)
    np.testing.assert_allclose(scaler.center_, np.median(train, axis=0))
    np.testing.assert_allclose(scaler.spread_, (high - low) / 1.349)

    scaler.transform(np.full((10, 2), 1e9))  # scoring never refits
    for key, value in scaler.state().items():
        np.testing.assert_array_equal(value, before[key])


def test_rows_outside_the_training_range_stay_finite_and_ordered() -> None:
    scaler = RobustScaler().fit(train_rows())
    raw = np.array([-1e12, -1e6, -50.0, 0.0, 5.0, 50.0, 1e6, 1e12])
    test = np.column_stack([raw, raw])

    scaled = scaler.transform(test)

    assert scaled.dtype == np.float32
    assert np.isfinite(scaled).all()
    assert np.all(np.diff(scaled, axis=0) > 0)  # larger raw value, larger scaled value


def test_constant_feature_gives_finite_values() -> None:
    rng = np.random.default_rng(0)
    constant = np.full(200, 3.0)
    mostly_constant = np.where(rng.random(200) < 0.05, 1.0, 0.0)  # IQR is zero
    scaler = RobustScaler().fit(np.column_stack([constant, mostly_constant]))

    scaled = scaler.transform(np.array([[3.0, 0.0], [4.0, 1.0], [-100.0, 7.0]]))

    assert np.isfinite(scaled).all()
    assert scaled[0, 0] == 0.0
    assert scaled[1, 1] > scaled[0, 1]


def test_state_round_trips_exactly(tmp_path: Path) -> None:
    scaler = RobustScaler().fit(train_rows())
    np.savez(tmp_path / "scaler.npz", **scaler.state())
    with np.load(tmp_path / "scaler.npz") as saved:
        restored = RobustScaler.from_state(dict(saved))

    for key, value in scaler.state().items():
        np.testing.assert_array_equal(restored.state()[key], value)
    x = train_rows()[:20] * 3.0
    np.testing.assert_array_equal(restored.transform(x), scaler.transform(x))


@pytest.mark.parametrize("call", ["transform", "state"])
def test_unfitted_scaler_refuses_to_work(call: str) -> None:
    scaler = RobustScaler()

    with pytest.raises(RuntimeError, match="not fitted"):
        if call == "transform":
            scaler.transform(np.zeros((2, 2)))
        else:
            scaler.state()
