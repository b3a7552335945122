"""Late labels: chargebacks and analysts' confirmations for rows scored long ago.

``anomalyflow feedback --labels FILE`` attaches ``id,label[,labeled_at]`` rows to window
rows by ``data.id``. The whole file is checked first (unknown ids, conflicting
duplicates, labels other than 0/1), so a bad file changes nothing; a good one is merged
into ``pending/labels.parquet`` in one atomic write, for the next training to take.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from anomalyflow.data.loaders import read_frame
from anomalyflow.data.schema import InputError, Schema
from anomalyflow.paths import ArtifactPaths
from anomalyflow.pipeline.window import LABELS_FILE, batch_files, merge_labels

COLUMNS = ("id", "label", "labeled_at")


@dataclass(frozen=True)
class Feedback:
    """What a labels file did to the window."""

    received: int  # rows in the file
    changed: int  # labels that differ from what the window held: the policy's new labels


def apply_feedback(paths: ArtifactPaths, schema: Schema, labels_file: Path) -> Feedback:
    """Check every row of ``labels_file``, then merge them all into the window, or none.

    Raises:
        InputError: naming the file, the column and the rule a row broke.
    """
    if not schema.id or not schema.label:
        raise InputError(labels_file, None, "late labels need data.id and data.label set")
    incoming = _checked(labels_file, read_frame(labels_file))
    current = _window_labels(paths, schema)
    unknown = incoming.loc[~incoming["id"].isin(current.index), "id"]
    if len(unknown):
        shown = ", ".join(map(str, unknown.head(5)))
        raise InputError(labels_file, "id", f"{len(unknown)} ids not in the window: {shown}")
    changed = int((current.loc[incoming["id"]].to_numpy() != incoming["label"].to_numpy()).sum())
    merge_labels(paths.pending / LABELS_FILE, incoming)
    return Feedback(received=len(incoming), changed=changed)


def _checked(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("id", "label"):
        if column not in frame.columns:
            raise InputError(path, column, "missing column (expected id,label[,labeled_at])")
    extra = [c for c in frame.columns if c not in COLUMNS]
    if extra:
        raise InputError(path, str(extra[0]), "unexpected column (expected id,label[,labeled_at])")
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = ~labels.isin((0, 1))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            path, "label", f"must be 0 or 1; found {frame['label'].tolist()[row]!r} at row {row}"
        )
    frame = frame.assign(label=labels.astype("int64"))
    if "labeled_at" in frame.columns:
        frame = frame.assign(labeled_at=_timestamps(path, frame["labeled_at"]))
    conflicting = frame.groupby("id")["label"].nunique()
    if (conflicting > 1).any():
        raise InputError(
            path, "id", f"id {conflicting[conflicting > 1].index[0]!r} has both labels"
        )
    return frame.drop_duplicates("id", keep="last")


def _timestamps(path: Path, given: pd.Series) -> pd.Series:
    """``labeled_at`` as UTC timestamps, whichever way the file wrote them (text in a CSV,
    datetimes in Parquet), so that files of both kinds merge into one labels file."""
    parsed = pd.to_datetime(given, errors="coerce", utc=True, format="ISO8601")
    bad = parsed.isna() & given.notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            path, "labeled_at", f"must be a date or time; found {given.iloc[row]!r} at row {row}"
        )
    return parsed


def _window_labels(paths: ArtifactPaths, schema: Schema) -> pd.Series:
    """Every accepted row's current label by id (late labels applied), pending or not."""
    assert schema.id and schema.label
    frames = [pd.read_parquet(f, columns=[schema.id, schema.label]) for f in batch_files(paths)]
    if not frames:
        return pd.Series(dtype="int64")
    rows = pd.concat(frames).drop_duplicates(schema.id, keep="last")
    current = rows.set_index(schema.id)[schema.label]
    for late_file in (paths.window / LABELS_FILE, paths.pending / LABELS_FILE):
        if late_file.exists():
            current.update(pd.read_parquet(late_file).set_index("id")["label"])
    return current
