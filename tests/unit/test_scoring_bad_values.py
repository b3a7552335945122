"""Batch scoring refuses values the network would see as infinite, naming the column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from anomalyflow.data.schema import InputError
from anomalyflow.detector import AnomalyDetector
from anomalyflow.scoring import score_file


def test_a_value_beyond_float32_is_refused_and_nothing_written(
    saved_detectors: list[Path], tmp_path: Path
) -> None:
    detector = AnomalyDetector.load(saved_detectors[0])
    rows = pd.DataFrame([[0.0] * len(detector.feature_names_)] * 3, columns=detector.feature_names_)
    rows.iloc[1, 2] = 1e308  # finite as float64, infinite as the network's float32
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    rows.to_parquet(source)
    with pytest.raises(InputError, match=detector.feature_names_[2]):
        score_file(detector, source, target, chunk_rows=2, progress=False)
    assert not target.exists()


def test_non_finite_scores_are_refused_and_nothing_written(
    saved_detectors: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken model once wrote NaN scores and exited 0."""
    import numpy as np

    from anomalyflow.scoring import ScoringError

    detector = AnomalyDetector.load(saved_detectors[0])
    rows = pd.DataFrame([[0.0] * len(detector.feature_names_)] * 3, columns=detector.feature_names_)
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    rows.to_parquet(source)
    monkeypatch.setattr(detector, "decision_function", lambda x: np.full(len(x), np.nan))
    with pytest.raises(ScoringError):
        score_file(detector, source, target, chunk_rows=2, progress=False)
    assert not target.exists()
