"""Jobs outside the retraining flow: the data a run stands on, and ``fit-score``.

Each validates all its inputs before it computes anything and writes its outputs
atomically, so bad input leaves nothing behind and never replaces a good artifact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anomalyflow.atomic import atomic_path
from anomalyflow.data import synthetic
from anomalyflow.data.loaders import read_npz, read_reference, read_table
from anomalyflow.data.schema import InputError, Schema
from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.params import DataParams, Params
from anomalyflow.paths import ArtifactPaths
from anomalyflow.training.loop import resolve_batch_size

CALIBRATION_SHARE = 0.3  # latest share of the recent rows, kept to fit the threshold
SYNTHETIC_SCHEMA = Schema(
    features=synthetic.FEATURES,
    label=synthetic.LABEL,
    id=synthetic.ID,
    timestamp=synthetic.TIMESTAMP,
)


def settings_from(params: Params) -> DetectorSettings:
    """The params sections a detector needs."""
    return DetectorSettings(
        params.model, params.pretrain, params.finetune, params.threshold, params.runtime
    )


def schema_from(data: DataParams) -> Schema:
    """Column roles: the built-in data set's, or those ``data`` names in the user's files."""
    if data.source == "synthetic":
        return SYNTHETIC_SCHEMA
    return Schema(data.features, data.label, data.id or None, data.timestamp or None)


def prepare_data(params: Params, paths: ArtifactPaths, regenerate: bool = False) -> Schema:
    """The run's schema, with its reference and holdout in place and sound.

    The built-in data is generated on first use (and again with ``regenerate``). Both
    files are read and checked now, so a missing file or column stops a run before it
    writes anything.

    Raises:
        InputError: naming the file, the column and the rule it broke.
    """
    if params.data.source == "synthetic":
        generated = {"history": paths.reference, "recent": paths.batch, "holdout": paths.holdout}
        if regenerate or not all(p.exists() for p in generated.values()):
            synthetic.write_parquet(synthetic.generate(params.synthetic), generated)
    schema = schema_from(params.data)
    read_reference(paths.reference, schema)
    holdout = read_table(paths.holdout, schema)
    assert holdout.y is not None and schema.label is not None
    if holdout.y.min() == holdout.y.max():
        raise InputError(
            paths.holdout, schema.label, "the holdout needs both anomalies (1) and normal rows (0)"
        )
    return schema


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
    detector = AnomalyDetector(settings_from(params))
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
