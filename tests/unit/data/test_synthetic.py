"""What users of the built-in synthetic card-transaction data set rely on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomalyflow.data.synthetic import (
    FEATURES,
    ID,
    LABEL,
    TIMESTAMP,
    SyntheticDataset,
    generate,
    write_parquet,
)
from anomalyflow.params import DriftKnobs, SyntheticParams

SMALL = SyntheticParams(
    seed=3, history_rows=4_000, recent_rows=3_000, holdout_rows=20_000, fraud_rate=0.02
)


@pytest.fixture(scope="module")
def dataset() -> SyntheticDataset:
    return generate(SMALL)


def _splits(data: SyntheticDataset) -> dict[str, pd.DataFrame]:
    return {"history": data.history, "recent": data.recent, "holdout": data.holdout}


def test_same_seed_gives_identical_data(dataset: SyntheticDataset) -> None:
    again = generate(SMALL)
    for name, frame in _splits(dataset).items():
        pd.testing.assert_frame_equal(frame, _splits(again)[name])


def test_different_seed_gives_different_data(dataset: SyntheticDataset) -> None:
    other = generate(replace(SMALL, seed=4))
    assert not np.allclose(other.history["amount"], dataset.history["amount"])


def test_sizes_and_columns(dataset: SyntheticDataset) -> None:
    assert len(dataset.history) == SMALL.history_rows
    assert len(dataset.recent) == SMALL.recent_rows
    assert len(dataset.holdout) == SMALL.holdout_rows
    assert list(dataset.history.columns) == [ID, TIMESTAMP, *FEATURES]
    assert list(dataset.recent.columns) == [ID, TIMESTAMP, *FEATURES, LABEL]
    assert list(dataset.holdout.columns) == [ID, TIMESTAMP, *FEATURES, LABEL]
    ids = pd.concat([frame[ID] for frame in _splits(dataset).values()])
    assert ids.is_unique


def test_features_are_numeric_without_nan(dataset: SyntheticDataset) -> None:
    for frame in _splits(dataset).values():
        values = frame[list(FEATURES)]
        assert all(pd.api.types.is_numeric_dtype(values[c]) for c in FEATURES)
        assert np.isfinite(values.to_numpy(dtype=float)).all()
        assert not frame.isna().any().any()


def test_features_are_consistent(dataset: SyntheticDataset) -> None:
    frame = dataset.holdout
    assert frame["hour"].between(0, 24, inclusive="left").all()
    assert frame["merchant_category"].between(0, 9).all()
    assert (frame["amount"] > 0).all()
    assert not ((frame["online"] == 1) & (frame["card_present"] == 1)).any()
    assert not ((frame["device_change"] == 1) & (frame["online"] == 0)).any()
    assert (frame["txn_count_24h"] >= frame["txn_count_1h"]).all()
    assert (frame["txn_count_1h"] >= 1).all()


def test_holdout_fraud_rate_is_near_the_knob(dataset: SyntheticDataset) -> None:
    assert dataset.holdout[LABEL].mean() == pytest.approx(SMALL.fraud_rate, rel=0.1)


def test_recent_labels_cover_the_configured_share_of_frauds() -> None:
    params = replace(SMALL, recent_rows=20_000, label_coverage=0.3)
    labeled = generate(params).recent[LABEL].sum()
    expected_frauds = params.fraud_rate * params.recent_rows
    assert labeled == pytest.approx(params.label_coverage * expected_frauds, rel=0.1)


def test_splits_are_ordered_in_time(dataset: SyntheticDataset) -> None:
    for frame in _splits(dataset).values():
        assert frame[TIMESTAMP].is_monotonic_increasing
    assert dataset.history[TIMESTAMP].max() < dataset.recent[TIMESTAMP].min()
    assert dataset.recent[TIMESTAMP].max() < dataset.holdout[TIMESTAMP].min()


def test_frauds_differ_from_legit_but_no_feature_separates_them(
    dataset: SyntheticDataset,
) -> None:
    frame = dataset.holdout
    fraud = frame[LABEL] == 1
    assert frame.loc[fraud, "txn_count_1h"].mean() > frame.loc[~fraud, "txn_count_1h"].mean()
    assert frame.loc[fraud, "device_change"].mean() > frame.loc[~fraud, "device_change"].mean()
    for name in FEATURES:
        # ROC AUC of the feature alone (Mann-Whitney), either direction.
        ranks = frame[name].rank()
        positives, negatives = int(fraud.sum()), int((~fraud).sum())
        auc = (ranks[fraud].sum() - positives * (positives + 1) / 2) / (positives * negatives)
        assert max(auc, 1 - auc) < 0.9, name


def test_history_is_the_reference_untouched_by_drift(dataset: SyntheticDataset) -> None:
    drift = DriftKnobs(amount_inflation=0.5, merchant_mix_shift=1.0, new_fraud_pattern=True)
    drifted = generate(replace(SMALL, drift=drift))
    pd.testing.assert_frame_equal(drifted.history, dataset.history)


def test_amount_inflation_raises_amounts(dataset: SyntheticDataset) -> None:
    inflated = generate(replace(SMALL, drift=DriftKnobs(amount_inflation=0.2)))
    for name in ("recent", "holdout"):
        ratio = _splits(inflated)[name]["amount"].mean() / _splits(dataset)[name]["amount"].mean()
        assert ratio == pytest.approx(1.2, rel=0.01)


def test_merchant_mix_shift_moves_spending_online(dataset: SyntheticDataset) -> None:
    shifted = generate(replace(SMALL, drift=DriftKnobs(merchant_mix_shift=0.8)))
    for name in ("recent", "holdout"):
        assert (
            _splits(shifted)[name]["online"].mean() > _splits(dataset)[name]["online"].mean() + 0.2
        )


def _collusion_like(frame: pd.DataFrame) -> pd.Series:
    """Rows matching the new typology: one store, after hours, many purchases a day."""
    return (
        (frame["merchant_category"] == 6)
        & (frame["card_present"] == 1)
        & ((frame["hour"] < 7) | (frame["hour"] > 23))
        & (frame["txn_count_24h"] >= 8)
    )


def test_new_fraud_pattern_appears_only_when_switched_on(dataset: SyntheticDataset) -> None:
    drifted = generate(replace(SMALL, drift=DriftKnobs(new_fraud_pattern=True)))
    frauds = drifted.holdout[LABEL] == 1
    assert (_collusion_like(dataset.holdout) & (dataset.holdout[LABEL] == 1)).sum() <= 2
    assert (_collusion_like(drifted.holdout) & frauds).sum() > 0.1 * frauds.sum()
    assert _collusion_like(drifted.recent).sum() > _collusion_like(dataset.recent).sum() + 5
    assert frauds.mean() == pytest.approx(SMALL.fraud_rate, rel=0.1)


def test_write_parquet_round_trips_and_leaves_no_temp_files(
    dataset: SyntheticDataset, tmp_path: Path
) -> None:
    target = tmp_path / "data"
    files = {name: target / f"{name}.parquet" for name in ("history", "recent", "holdout")}
    paths = write_parquet(dataset, files)
    assert set(paths) == {"history", "recent", "holdout"}
    assert sorted(p.name for p in target.iterdir()) == [
        "history.parquet",
        "holdout.parquet",
        "recent.parquet",
    ]
    for name, frame in _splits(dataset).items():
        pd.testing.assert_frame_equal(pd.read_parquet(paths[name]), frame)
