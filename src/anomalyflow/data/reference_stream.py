"""A Parquet reference read one row group at a time: pretraining on more rows than fit in memory.

The units are row groups: those of one file, or of each ``.parquet`` file of a folder in
name order. Every row has a global index, its position in the whole reference, so a
hold-out drawn by index is the same rows however the reference is cut into groups, and
the ranks of a distributed run can read disjoint groups. At most one group (as float64,
for the checks) is held beside what the caller keeps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from anomalyflow.data.loaders import as_float32, require_file
from anomalyflow.data.schema import InputError, Schema

PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class RowGroup:
    """One row group of one file, placed in the whole reference."""

    file: Path
    index: int  # the group's number within its file
    start: int  # global index of its first row
    rows: int
    offset: int = 0  # first row within the file's group, for a piece of one (``split``)


class ReferenceStream:
    """The feature columns of a Parquet reference, checked as ``read_reference`` checks them.

    Opening reads only metadata: columns, types and row counts. Rows are checked (finite,
    within float32) as each group is read.

    Attributes:
        path: the file, or the folder of files.
        features: the columns read, in the model's order.
        groups: every row group, in global order.
        total_rows: rows of the whole reference.
    """

    def __init__(self, path: Path | str, schema: Schema) -> None:
        self.path = Path(path)
        self.features = schema.features
        self.groups = tuple(_row_groups(_parquet_files(self.path), schema))
        self.total_rows = sum(group.rows for group in self.groups)
        if self.total_rows == 0:
            raise InputError(self.path, None, "file has no rows")
        self._samples: dict[tuple[int, int], np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        """What a rank process receives: the layout, not the samples cached here."""
        return self.__dict__ | {"_samples": {}}

    def read(self, group: RowGroup) -> np.ndarray:
        """The group's features, float32 ``(group.rows, features)``."""
        with pq.ParquetFile(group.file) as file:
            table = file.read_row_group(group.index, columns=list(self.features))
        table = table.slice(group.offset, group.rows)
        values = np.empty((group.rows, len(self.features)), dtype=np.float64)
        for j, column in enumerate(self.features):
            values[:, j] = table.column(column).to_numpy(zero_copy_only=False)
        rows = as_float32(values)
        _check_finite(group, self.features, rows)
        return rows

    def split(self, parts: int) -> tuple[RowGroup, ...]:
        """The row groups, each cut into equal pieces where there are fewer than ``parts``.

        Ranks read disjoint pieces; a reference written as one row group (pandas' and
        pyarrow's default below a million rows) is still shared between ranks, each
        reading the group and keeping its piece.
        """
        pieces = math.ceil(parts / len(self.groups))
        if pieces == 1:
            return self.groups
        cut = []
        for group in self.groups:
            bounds = np.linspace(0, group.rows, pieces + 1).astype(np.int64)
            cut += [
                RowGroup(group.file, group.index, group.start + int(a), int(b - a), int(a))
                for a, b in itertools.pairwise(bounds)
                if b > a
            ]
        return tuple(cut)

    def rows(self, groups: Iterable[RowGroup]) -> Iterator[tuple[RowGroup, np.ndarray]]:
        """Each of ``groups`` with its rows, one group in memory at a time."""
        for group in groups:
            yield group, self.read(group)

    def sample(self, size: int, seed: int) -> np.ndarray:
        """A uniform sample of ``size`` rows without replacement, in global order, float32.

        Every row when the reference has no more than ``size``, so on data that fits the
        scaler fitted on it is the one fitted in memory. Kept for a second call.
        """
        key = (size, seed)
        if key not in self._samples:
            self._samples[key] = self._draw_sample(size, seed)
        return self._samples[key]

    def _draw_sample(self, size: int, seed: int) -> np.ndarray:
        """Keep the rows of the ``size`` smallest random keys: one pass, bounded memory."""
        if self.total_rows <= size:
            return np.concatenate([rows for _, rows in self.rows(self.groups)])
        rng = np.random.default_rng(seed)
        keys = np.empty(0)
        index = np.empty(0, dtype=np.int64)
        kept = np.empty((0, len(self.features)), dtype=np.float32)
        for group, rows in self.rows(self.groups):
            keys = np.concatenate([keys, rng.random(group.rows)])
            index = np.concatenate([index, np.arange(group.start, group.start + group.rows)])
            kept = np.concatenate([kept, rows])
            if len(keys) > size:
                best = np.argpartition(keys, size)[:size]
                keys, index, kept = keys[best], index[best], kept[best]
        return kept[np.argsort(index)]

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Rows at sorted global ``indices``, in that order, float32 ``(len(indices), features)``.

        Reads only the groups that hold one of them.
        """
        parts = []
        for group in self.groups:
            low, high = np.searchsorted(indices, [group.start, group.start + group.rows])
            if high > low:
                parts.append(self.read(group)[indices[low:high] - group.start])
        return np.concatenate(parts)

    def without(self, groups: Sequence[RowGroup], excluded: np.ndarray) -> np.ndarray:
        """The rows of ``groups`` in global order, less those at sorted global ``excluded``."""
        parts = []
        for group, rows in self.rows(sorted(groups, key=lambda g: g.start)):
            keep = np.ones(group.rows, dtype=bool)
            low, high = np.searchsorted(excluded, [group.start, group.start + group.rows])
            keep[excluded[low:high] - group.start] = False
            parts.append(rows[keep])
        return np.concatenate(parts)

    def identity(self) -> list[tuple[str, int, int]]:
        """Each file's name, size and change time: what a checkpoint of this data matches."""
        files = sorted({group.file for group in self.groups})
        return [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def _parquet_files(path: Path) -> list[Path]:
    """The file, or every Parquet file of the folder in name order."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in PARQUET_SUFFIXES)
        if not files:
            raise InputError(path, None, "folder holds no .parquet files")
        return files
    if require_file(path).suffix.lower() not in PARQUET_SUFFIXES:
        raise InputError(
            path,
            None,
            "not Parquet: a reference streamed in row groups (more rows than "
            "pretrain.memory_rows, or pretrain.nproc above 1) must be .parquet",
        )
    return [path]


def _row_groups(files: list[Path], schema: Schema) -> Iterator[RowGroup]:
    """The row groups of ``files``, each file's columns checked against ``schema``."""
    start = 0
    for path in files:
        try:
            with pq.ParquetFile(path) as file:
                columns, metadata = file.schema_arrow, file.metadata
        except (OSError, pa.ArrowException) as error:
            raise InputError(path, None, f"cannot be read as Parquet ({error})") from error
        _check_columns(path, columns, schema)
        for index in range(metadata.num_row_groups):
            rows = metadata.row_group(index).num_rows
            yield RowGroup(path, index, start, rows)
            start += rows


def _check_columns(path: Path, columns: pa.Schema, schema: Schema) -> None:
    """Refuse what ``read_reference`` refuses: missing, extra or non-numeric columns."""
    names = set(columns.names)
    missing = [c for c in schema.features if c not in names]
    if missing:
        raise InputError(path, missing[0], "missing column required by the schema")
    extra = [c for c in columns.names if c not in schema.columns]
    if extra:
        raise InputError(path, extra[0], "extra column not in the schema")
    for column in schema.features:
        kind = columns.field(column).type
        if not (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        ):
            raise InputError(path, column, f"non-numeric values (dtype {kind})")


def _check_finite(group: RowGroup, features: tuple[str, ...], rows: np.ndarray) -> None:
    """Refuse NaN (and nulls), infinity and values beyond float32, naming the global row."""
    bad = ~np.isfinite(rows)
    if not bad.any():
        return
    column = int(np.flatnonzero(bad.any(axis=0))[0])
    row = int(np.flatnonzero(bad[:, column])[0])
    raise InputError(
        group.file,
        features[column],
        f"{int(bad[:, column].sum())} NaN, null, infinite or beyond-float32 values in row "
        f"group {group.index} (first at row {group.start + row} of the reference)",
    )
