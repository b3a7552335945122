"""Evidently drift: found on a drifted batch, not on a clean one; reports written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from anomalyflow.data import synthetic
from anomalyflow.drift.report import SCORE_COLUMN, detect_drift
from anomalyflow.params import DriftKnobs, Params


def _batches() -> tuple[object, object, object]:
    p = Params().synthetic
    base = replace(p, history_rows=6000, recent_rows=3000, holdout_rows=500)
    shifted = replace(base, drift=DriftKnobs(amount_inflation=0.3, merchant_mix_shift=0.6))
    return (
        synthetic.generate(base).history,
        synthetic.generate(base).recent,
        synthetic.generate(shifted).recent,
    )


def test_drift_is_detected_on_a_drifted_batch_and_not_on_a_clean_one(tmp_path: Path) -> None:
    reference, clean, drifted = _batches()
    params = Params().drift
    calm = detect_drift(reference, clean, synthetic.FEATURES, params, tmp_path / "clean")
    moved = detect_drift(reference, drifted, synthetic.FEATURES, params, tmp_path / "drift")

    assert not calm.drift_detected and calm.share_drifted < params.drifted_share_threshold
    assert moved.drift_detected
    assert {"amount", "merchant_category", "online"} <= set(moved.drifted_columns)
    assert moved.html.stat().st_size > 10_000 and moved.json.exists()
    assert "<script" in moved.html.read_text()[:200_000]  # assets inlined: opens offline


def test_score_drift_alone_triggers(tmp_path: Path) -> None:
    reference, clean, _ = _batches()
    rng = np.random.default_rng(0)
    reference = reference.assign(**{SCORE_COLUMN: rng.normal(size=len(reference))})
    clean = clean.assign(**{SCORE_COLUMN: rng.normal(loc=1.5, size=len(clean))})
    result = detect_drift(reference, clean, synthetic.FEATURES, Params().drift, tmp_path)
    assert result.score_drift is not None and result.score_drift.drifted
    assert result.drift_detected and result.share_drifted < 0.3


def test_label_rate_drift_against_the_labels_trained_on(tmp_path: Path) -> None:
    import pandas as pd

    reference, clean, _ = _batches()
    rng = np.random.default_rng(0)
    trained_on = pd.Series((rng.random(3000) < 0.005).astype(int), name="is_fraud")
    same = clean.assign(is_fraud=(rng.random(len(clean)) < 0.005).astype(int))
    flood = clean.assign(is_fraud=(rng.random(len(clean)) < 0.2).astype(int))
    params = Params().drift
    calm = detect_drift(
        reference,
        same,
        synthetic.FEATURES,
        params,
        tmp_path / "a",
        label="is_fraud",
        reference_labels=trained_on,
    )
    moved = detect_drift(
        reference,
        flood,
        synthetic.FEATURES,
        params,
        tmp_path / "b",
        label="is_fraud",
        reference_labels=trained_on,
    )
    assert calm.label_drift is not None and not calm.label_drift.drifted
    assert moved.label_drift is not None and moved.label_drift.drifted
    assert moved.drift_detected
