"""The window stage: every accepted batch joins the training window, whatever the run decides.

The window is a folder of Parquet files, one per batch, named by when it arrived and its
hash, plus ``labels.parquet`` with labels that arrived later for rows already there.
Fine-tuning reads the most recent rows of it (``window.days``, ``window.max_rows``), so a
run skipped in cooldown loses nothing: its rows and labels are there for the next one.
Each file is written whole or not at all, and a batch already in the window is not added
twice, so no row is lost or counted twice.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from anomalyflow.atomic import atomic_path
from anomalyflow.data.loaders import Table, table_from_frame
from anomalyflow.data.schema import Schema
from anomalyflow.params import WindowParams
from anomalyflow.paths import ArtifactPaths

LABELS_FILE = "labels.parquet"
BATCH_PATTERN = "batch-*.parquet"


def append_batch(paths: ArtifactPaths, batch: Table, batch_digest: str) -> bool:
    """Add an accepted batch to the window; False when it is already there."""
    assert batch.frame is not None
    if any(batch_digest[:16] in p.name for p in paths.window.glob(BATCH_PATTERN)):
        return False
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    target = paths.window / f"batch-{stamp}-{batch_digest[:16]}.parquet"
    with atomic_path(target) as partial:
        batch.frame.to_parquet(partial, index=False)
    return True


def read_window(paths: ArtifactPaths, schema: Schema, rules: WindowParams) -> Table:
    """The window's most recent rows, late labels applied, checked like any batch."""
    files = sorted(paths.window.glob(BATCH_PATTERN))  # arrival order: the names sort by time
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    frame = _with_late_labels(frame, paths.window / LABELS_FILE, schema)
    if schema.timestamp:
        frame = frame.sort_values(schema.timestamp, kind="stable", ignore_index=True)
        if rules.days is not None:
            newest = pd.Timestamp(frame[schema.timestamp].max())
            frame = frame[frame[schema.timestamp] >= newest - pd.Timedelta(days=rules.days)]
    if rules.max_rows is not None:
        frame = frame.tail(rules.max_rows)
    return table_from_frame(paths.window, frame.reset_index(drop=True), schema)


def window_digest(paths: ArtifactPaths) -> str:
    """Changes when a batch joins the window or labels arrive: the policy's 'new data'."""
    digest = hashlib.sha256()
    for name in sorted(p.name for p in paths.window.glob(BATCH_PATTERN)):
        digest.update(name.encode())
    labels = paths.window / LABELS_FILE
    if labels.exists():
        digest.update(labels.read_bytes())
    return digest.hexdigest()


def _with_late_labels(frame: pd.DataFrame, labels_file: Path, schema: Schema) -> pd.DataFrame:
    if not (labels_file.exists() and schema.id and schema.label):
        return frame
    late = pd.read_parquet(labels_file).set_index("id")["label"]
    known = frame[schema.id].isin(late.index)
    frame = frame.copy()
    frame.loc[known, schema.label] = frame.loc[known, schema.id].map(late).astype("int64")
    return frame
