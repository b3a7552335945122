"""Partitions of a batch and the uniform sample drift draws from them on Dask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anomalyflow.partitions import sample_source, split

pytest.importorskip("distributed")

GROUPS = (1000, 200, 500, 300)  # rows per row group: unequal, as real files are


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """2,000 rows in row groups of unequal size; ``row`` numbers them in file order."""
    rows = sum(GROUPS)
    frame = pd.DataFrame({"row": np.arange(rows), "x": np.random.default_rng(0).normal(size=rows)})
    path = tmp_path / "batch.parquet"
    with pq.ParquetWriter(path, pa.Schema.from_pandas(frame, preserve_index=False)) as writer:
        start = 0
        for size in GROUPS:
            chunk = frame.iloc[start : start + size]
            writer.write_table(pa.Table.from_pandas(chunk, preserve_index=False))
            start += size
    return path


def test_a_file_of_row_groups_splits_by_group_and_a_csv_does_not(
    batch: Path, tmp_path: Path
) -> None:
    parts = split(batch, 1)
    assert parts is not None and [p.rows for p in parts] == list(GROUPS)
    pd.read_parquet(batch).to_csv(tmp_path / "batch.csv", index=False)
    assert split(tmp_path / "batch.csv", 1) is None
    pq.write_table(pq.read_table(batch), tmp_path / "one.parquet")  # one row group
    assert split(tmp_path / "one.parquet", 1) is None


def test_small_row_groups_merge_into_partitions_of_at_least_min_rows(batch: Path) -> None:
    parts = split(batch, 600)
    assert parts is not None
    assert [(p.row_groups, p.offset, p.rows) for p in parts] == [
        ([0], 0, 1000),
        ([1, 2], 1000, 700),
        ([3], 1700, 300),  # the last takes what is left
    ]
    assert [p.index for p in parts] == [0, 1, 2]
    assert split(batch, 2000) is None  # one partition: checked as one frame


def test_a_bound_above_the_rows_takes_the_whole_batch_in_file_order(
    batch: Path, dask_client: object
) -> None:
    sample, total = sample_source(dask_client, batch, 5000, seed=0)  # type: ignore[arg-type]
    assert total == 2000
    pd.testing.assert_frame_equal(sample, pd.read_parquet(batch))


def test_the_sample_is_bounded_distinct_spread_over_partitions_and_repeatable(
    batch: Path, dask_client: object
) -> None:
    sample, total = sample_source(dask_client, batch, 400, seed=3)  # type: ignore[arg-type]
    again, _ = sample_source(dask_client, batch, 400, seed=3)  # type: ignore[arg-type]
    other, _ = sample_source(dask_client, batch, 400, seed=4)  # type: ignore[arg-type]
    assert total == 2000 and len(sample) == 400 and sample.row.is_unique
    assert sample.row.is_monotonic_increasing  # file order, each row its own values
    original = pd.read_parquet(batch).set_index("row")
    np.testing.assert_array_equal(sample.x, original.loc[sample.row, "x"])
    pd.testing.assert_frame_equal(sample, again)
    assert not sample.row.equals(other.row)
    # Each row group gives about its share (a fifth of its rows), not a fixed quota.
    edges = np.cumsum((0, *GROUPS))
    per_group = np.histogram(sample.row, bins=edges)[0]
    expected = np.array(GROUPS) / 5
    assert np.all(np.abs(per_group - expected) <= 4 * np.sqrt(expected))
