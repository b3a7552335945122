"""The window stage: every accepted batch joins the training data, whatever the run decides.

An accepted batch first lands in ``pending/`` (a Parquet file per batch, named by when it
arrived and its hash), late labels in ``pending/labels.parquet``; training moves them all
into ``window/`` (:func:`release_pending`) and fine-tunes on the window's most recent rows
(``window.days``, ``window.max_rows``). So a run skipped in cooldown loses nothing (its
rows and labels wait in ``pending/``), and DVC's ledger stays true and clean: fine-tuning
depends on ``window/``, which holds exactly what the latest model learned from, while the
window stage records both folders. Each file is written or moved whole, and a batch
already in either folder is not added twice, so no row is lost or counted twice.
"""

from __future__ import annotations

import hashlib
import os
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


def append_batch(
    paths: ArtifactPaths, batch: Table, batch_digest: str, id_column: str | None
) -> int:
    """Add an accepted batch's new rows to ``pending/``; how many were new (0: it is in
    the window already).

    With an ``id_column``, rows whose ids an accepted batch holds are left out: the same
    rows re-sent in another file (a CSV export of a Parquet batch, an overlapping
    export) would otherwise be trained on twice, their labels counted twice.
    """
    assert batch.frame is not None
    accepted = batch_files(paths)
    if any(batch_digest[:16] in p.name for p in accepted):
        return 0
    frame = batch.frame
    if id_column is not None and accepted:
        seen = pd.concat([pd.read_parquet(p, columns=[id_column]) for p in accepted])
        frame = frame[~frame[id_column].isin(seen[id_column])]
    if frame.empty:
        return 0
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    target = paths.pending / f"batch-{stamp}-{batch_digest[:16]}.parquet"
    with atomic_path(target) as partial:
        frame.to_parquet(partial, index=False)
    return len(frame)


def batch_files(paths: ArtifactPaths) -> list[Path]:
    """Every accepted batch, trained on or pending, in arrival order (names sort by time)."""
    found = [*paths.window.glob(BATCH_PATTERN), *paths.pending.glob(BATCH_PATTERN)]
    return sorted(found, key=lambda p: p.name)


def release_pending(paths: ArtifactPaths) -> int:
    """Move what arrived since the latest training into the window, for training now;
    the number of batches moved.

    Each file moves with one rename, and pending labels are merged into the window's
    before they are removed, so a crash half way loses nothing and counts nothing twice:
    the next release finishes the move.
    """
    for folder in paths.accepted:  # both are DVC outputs, empty or not
        folder.mkdir(parents=True, exist_ok=True)
    moved = sorted(paths.pending.glob(BATCH_PATTERN))
    for batch in moved:
        os.replace(batch, paths.window / batch.name)
    pending_labels = paths.pending / LABELS_FILE
    if pending_labels.exists():
        merge_labels(paths.window / LABELS_FILE, pd.read_parquet(pending_labels))
        pending_labels.unlink()
    return len(moved)


def merge_labels(labels_file: Path, incoming: pd.DataFrame) -> None:
    """Add ``incoming`` labels (``id``, ``label``, ...) to a labels file; the newer label of
    an id wins. One atomic write."""
    merged = incoming
    if labels_file.exists():
        merged = pd.concat([pd.read_parquet(labels_file), incoming]).drop_duplicates(
            "id", keep="last"
        )
    if "labeled_at" in merged.columns:  # files written before it was parsed hold it as text
        merged = merged.assign(
            labeled_at=pd.to_datetime(merged["labeled_at"], utc=True, format="ISO8601")
        )
    with atomic_path(labels_file) as partial:
        merged.to_parquet(partial, index=False)


def read_window(paths: ArtifactPaths, schema: Schema, rules: WindowParams) -> Table:
    """The window's most recent rows, late labels applied, checked like any batch; what
    is still pending is not read (see :func:`release_pending`)."""
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
    """Changes when a batch is accepted or labels arrive, pending or not: the policy's
    'new data'. Releasing pending data into the window leaves it as it was."""
    digest = hashlib.sha256()
    for batch in batch_files(paths):
        digest.update(batch.name.encode())
    labels = [paths.window / LABELS_FILE, paths.pending / LABELS_FILE]
    frames = [pd.read_parquet(f, columns=["id", "label"]) for f in labels if f.exists()]
    if frames:
        latest = pd.concat(frames).drop_duplicates("id", keep="last")
        digest.update(latest.sort_values("id", kind="stable").to_csv(index=False).encode())
    return digest.hexdigest()


def _with_late_labels(frame: pd.DataFrame, labels_file: Path, schema: Schema) -> pd.DataFrame:
    if not (labels_file.exists() and schema.id and schema.label):
        return frame
    late = pd.read_parquet(labels_file).set_index("id")["label"]
    known = frame[schema.id].isin(late.index)
    frame = frame.copy()
    frame.loc[known, schema.label] = frame.loc[known, schema.id].map(late).astype("int64")
    return frame
