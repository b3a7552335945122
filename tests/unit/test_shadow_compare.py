"""Shadow scoring names rows by the data's id and, given labels, scores both models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from anomalyflow.detector import AnomalyDetector
from anomalyflow.scoring import shadow_compare
from tests.conftest import make_blobs


def test_disagreements_carry_ids_and_labels_give_precision_and_recall(
    saved_detectors: list[Path], tmp_path: Path
) -> None:
    production, candidate = (AnomalyDetector.load(f) for f in saved_detectors)
    x, y = make_blobs(rows=1500, seed=9)
    frame = pd.DataFrame(x, columns=list(production.feature_names_))
    frame = frame.assign(txn=[f"t{i:05d}" for i in range(len(x))], fraud=y)
    frame.to_parquet(tmp_path / "batch.parquet")

    report = shadow_compare(
        production, candidate, tmp_path / "batch.parquet", 400, columns=("txn", "fraud")
    )

    assert report["examples"], "the two seeds should disagree somewhere"
    for example in report["examples"]:  # rows named by id, as the data names them
        assert example["id"] == f"t{example['row']:05d}"
    flags = production.decision_function(x) >= production.threshold_
    expected_precision = float((flags & (y == 1)).sum() / max(flags.sum(), 1))
    assert np.isclose(report["on_labels"]["production"]["precision"], expected_precision)
    assert set(report["on_labels"]) == {"production", "candidate"}
