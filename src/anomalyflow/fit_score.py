"""``fit-score``: pretrain and fine-tune on one npz, score another, outside the pipeline.

It validates all its inputs before it computes anything and writes its output
atomically, so bad input leaves nothing behind and never replaces a good file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anomalyflow.atomic import atomic_path
from anomalyflow.data.loaders import read_npz
from anomalyflow.data.schema import InputError
from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.params import Params
from anomalyflow.training.loop import resolve_batch_size


def fit_score(train: Path, test: Path, out: Path, params: Params) -> np.ndarray:
    """Pretrain on TRAIN's X, fine-tune on its labels, write one score per TEST row.

    TRAIN has ``X`` and ``y`` (1 = labeled anomaly, 0 = unlabeled); TEST has ``X``.
    """
    min_rows = _explicit_batch(params)
    train_table = read_npz(train, require_labels=True, min_rows=min_rows)
    test_table = read_npz(test, require_labels=False)
    if test_table.x.shape[1] != train_table.x.shape[1]:
        raise InputError(
            test, "X", f"has {test_table.x.shape[1]} features, TRAIN has {train_table.x.shape[1]}"
        )
    detector = AnomalyDetector(DetectorSettings.from_params(params))
    detector.fit(train_table.x, train_table.y)
    scores = detector.decision_function(test_table.x)
    write_array(scores, out)
    return scores


def write_array(array: np.ndarray, path: Path) -> None:
    """Save a ``.npy`` atomically (temp file in the same folder, then rename)."""
    with atomic_path(path) as partial, partial.open("wb") as stream:
        np.save(stream, array)


def _explicit_batch(params: Params) -> int:
    """Rows needed: an explicitly set batch size is a promise the data must keep."""
    sizes = [params.pretrain.batch_size, params.finetune.batch_size]
    return max(resolve_batch_size(s, 0) if s != "auto" else 1 for s in sizes)
