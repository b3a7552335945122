"""Read CSV, Parquet and ``.npz`` inputs, refusing bad data before any work starts.

Every check raises :class:`InputError` naming the file, the column and the rule, so a
user can fix the input without reading a traceback.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from anomalyflow.data.schema import InputError, Schema

FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Table:
    """A validated input: features as float32 ``(rows, features)``, labels ``(rows,)``."""

    x: np.ndarray
    y: np.ndarray | None
    frame: pd.DataFrame | None  # the original table (CSV / Parquet), None for npz
    feature_names: tuple[str, ...]


def read_table(path: Path | str, schema: Schema, min_rows: int = 1) -> Table:
    """Load a CSV or Parquet file that must match ``schema`` exactly (no extra columns)."""
    path = Path(path)
    return _table(path, read_frame(path), schema, min_rows)


def table_from_frame(source: Path, frame: pd.DataFrame, schema: Schema) -> Table:
    """Check a frame built in memory (the training window) as a file of ``source``."""
    return _table(source, frame, schema, min_rows=1)


def read_reference(path: Path | str, schema: Schema) -> Table:
    """Load reference (history) data: ``schema``'s columns, its label column optional.

    Pretraining ignores labels, so a history with or without them serves alike.
    """
    path = Path(path)
    frame = read_frame(path)
    if schema.label not in frame.columns:
        schema = schema.without_label()
    return _table(path, frame, schema, min_rows=1)


def _table(path: Path, frame: pd.DataFrame, schema: Schema, min_rows: int) -> Table:
    missing = [c for c in schema.columns if c not in frame.columns]
    if missing:
        raise InputError(path, missing[0], "missing column required by the schema")
    extra = [c for c in frame.columns if c not in schema.columns]
    if extra:
        raise InputError(path, str(extra[0]), "extra column not in the schema")
    _check_rows(path, len(frame), min_rows)
    for column in schema.features:
        series = frame[column]
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            raise InputError(path, column, f"non-numeric values (dtype {series.dtype})")
        _check_finite(path, column, series.to_numpy(dtype=np.float64))
    y = None
    if schema.label is not None:
        y = _check_labels(path, schema.label, frame[schema.label].to_numpy())
    x = frame[list(schema.features)].to_numpy(dtype=np.float32)
    return Table(x=x, y=y, frame=frame, feature_names=schema.features)


def read_npz(path: Path | str, require_labels: bool, min_rows: int = 1) -> Table:
    """Load an ADBench-style ``.npz`` with ``X`` (rows, features) and optionally ``y``."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "file not found")
    if path.stat().st_size == 0:
        raise InputError(path, None, "file is empty")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(path, None, f"not a readable .npz file ({error})") from error
    if "X" not in arrays:
        raise InputError(path, "X", "missing array")
    x = arrays["X"]
    if x.ndim != 2:
        raise InputError(path, "X", f"must be 2-D (rows, features), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(path, "X", "is empty")
    if not (
        np.issubdtype(x.dtype, np.integer)
        or np.issubdtype(x.dtype, np.floating)
        or x.dtype == np.bool_
    ):
        raise InputError(path, "X", f"non-numeric values (dtype {x.dtype})")
    x = x.astype(np.float64)
    for j in np.flatnonzero(~np.isfinite(as_float32(x)).all(axis=0))[:1]:
        _check_finite(path, f"X[:, {j}]", x[:, j])
    _check_rows(path, x.shape[0], min_rows)
    y = None
    if "y" in arrays:
        labels = arrays["y"]
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise InputError(path, "y", f"must be 1-D (rows,), got shape {labels.shape}")
        y = _check_labels(path, "y", labels)
        if len(y) != x.shape[0]:
            raise InputError(path, "y", f"has {len(y)} values for {x.shape[0]} rows of X")
    elif require_labels:
        raise InputError(path, "y", "missing array (labels are required here)")
    names = tuple(f"x{j}" for j in range(x.shape[1]))
    return Table(x=x.astype(np.float32), y=y, frame=None, feature_names=names)


def require_file(path: Path) -> Path:
    """``path`` if it is a non-empty file; otherwise a refusal saying what it is instead."""
    if not path.exists():
        raise InputError(path, None, "file not found")
    if not path.is_file():
        raise InputError(path, None, "is a folder, not a file")
    if path.stat().st_size == 0:
        raise InputError(path, None, "file is empty")
    return path


def read_frame(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file (any case of suffix) as read, or a refusal naming it."""
    with _refused_unless_readable(path) as suffix:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    if frame.empty:
        raise InputError(path, None, "file has no rows")
    return frame


def readable_header(path: Path) -> Path:
    """``path`` if it reads as CSV or Parquet and has rows, reading no more than its first
    row: a file too large for memory is streamed later, and must not fail half-way."""
    with _refused_unless_readable(path) as suffix:
        if suffix == ".csv":
            rows = len(pd.read_csv(path, nrows=1))
        else:
            rows = pq.ParquetFile(path).metadata.num_rows
    if rows == 0:
        raise InputError(path, None, "file has no rows")
    return path


@contextmanager
def _refused_unless_readable(path: Path) -> Iterator[str]:
    """Yield the suffix of a CSV or Parquet file; a parse error inside becomes a refusal."""
    suffix = require_file(path).suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise InputError(path, None, "unsupported format (use .csv, .parquet or .npz)")
    try:
        yield suffix
    except pd.errors.EmptyDataError as error:
        raise InputError(path, None, "file is empty") from error
    except (OSError, ValueError) as error:  # Arrow's and pandas' parse errors are ValueErrors
        raise InputError(path, None, f"cannot be read ({error})") from error


def _check_rows(path: Path, rows: int, min_rows: int) -> None:
    if rows == 0:
        raise InputError(path, None, "file has no rows")
    if rows < min_rows:
        raise InputError(
            path,
            None,
            f"has {rows} rows, fewer than the batch size {min_rows}; "
            "lower batch_size in params.yaml or supply more rows",
        )


def _check_finite(path: Path, column: str, values: np.ndarray) -> None:
    """Refuse NaN, infinity, and values beyond float32's range, which the network sees
    as infinity (1e308 is a finite float64)."""
    bad = ~np.isfinite(as_float32(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = float(values[row])
        kind = "NaN" if np.isnan(value) else "infinite" if np.isinf(value) else "beyond float32"
        raise InputError(
            path,
            column,
            f"{int(bad.sum())} NaN, infinite or beyond-float32 values "
            f"(first: {kind} at row {row}; float32 holds up to {FLOAT32_MAX:.3g})",
        )


def as_float32(values: np.ndarray) -> np.ndarray:
    """``values`` as the network's float32: out-of-range values become infinite, quietly."""
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float64).astype(np.float32)


def _check_labels(path: Path, column: str, values: np.ndarray) -> np.ndarray:
    numeric = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    invalid = ~np.isin(numeric, (0.0, 1.0))
    if invalid.any():
        row = int(np.flatnonzero(invalid)[0])
        raise InputError(
            path, column, f"label values must be 0 or 1; found {values[row]!r} at row {row}"
        )
    return numeric.astype(np.int64)
