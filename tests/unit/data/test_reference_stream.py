"""The streamed reference: every row once across ranks, samples and hold-outs by global index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anomalyflow.data.loaders import read_reference
from anomalyflow.data.reference_stream import ReferenceStream
from anomalyflow.data.schema import InputError, Schema
from anomalyflow.training.streamed import EpochPlan

SCHEMA = Schema(features=("a", "b", "c"), label="label")


def write_reference(path: Path, rows: int, group_rows: int, seed: int = 0) -> np.ndarray:
    """A Parquet file of ``rows`` rows in groups of ``group_rows``; its features, float32."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3)).astype(np.float32)
    frame = pd.DataFrame(x, columns=list(SCHEMA.features))
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=group_rows
    )
    return x


def test_the_stream_reads_what_read_reference_reads(tmp_path: Path) -> None:
    path = tmp_path / "ref.parquet"
    write_reference(path, rows=1000, group_rows=300)
    stream = ReferenceStream(path, SCHEMA)

    assert [g.rows for g in stream.groups] == [300, 300, 300, 100]
    assert stream.total_rows == 1000
    in_memory = read_reference(path, SCHEMA).x
    np.testing.assert_array_equal(stream.sample(5000, seed=0), in_memory)
    indices = np.array([0, 299, 300, 999])
    np.testing.assert_array_equal(stream.take(indices), in_memory[indices])


def test_a_folder_of_files_is_one_reference_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "ref"
    folder.mkdir()
    first = write_reference(folder / "part-0.parquet", rows=200, group_rows=100, seed=1)
    second = write_reference(folder / "part-1.parquet", rows=150, group_rows=100, seed=2)

    stream = ReferenceStream(folder, SCHEMA)

    assert [(g.file.name, g.start) for g in stream.groups] == [
        ("part-0.parquet", 0),
        ("part-0.parquet", 100),
        ("part-1.parquet", 200),
        ("part-1.parquet", 300),
    ]
    np.testing.assert_array_equal(stream.sample(10_000, seed=0), np.concatenate([first, second]))


def test_a_sample_smaller_than_the_reference_is_uniform_distinct_rows(tmp_path: Path) -> None:
    path = tmp_path / "ref.parquet"
    x = write_reference(path, rows=5000, group_rows=700)
    sample = ReferenceStream(path, SCHEMA).sample(1000, seed=3)

    positions = [int(np.flatnonzero((x == row).all(axis=1))[0]) for row in sample]
    assert len(set(positions)) == 1000
    assert positions == sorted(positions)  # kept in the reference's order
    assert 0.4 < np.mean(np.array(positions) < 2500) < 0.6


@pytest.mark.parametrize(("world", "group_rows"), [(1, 170), (2, 170), (3, 170), (2, 2000)])
def test_ranks_read_disjoint_row_groups_that_cover_every_row_once(
    tmp_path: Path, world: int, group_rows: int
) -> None:
    path = tmp_path / "ref.parquet"
    x = write_reference(path, rows=2000, group_rows=group_rows)
    stream = ReferenceStream(path, SCHEMA)
    excluded = np.array([5, 400, 1999])
    plan = EpochPlan(stream.split(world), excluded, 1000, 64, seed=0, world=world)

    for epoch in (0, 1):
        shards = [plan.shard(epoch, rank) for rank in range(world)]
        read = np.concatenate(
            [stream.without(buffer, excluded) for shard in shards for buffer in plan.buffers(shard)]
        )
        expected = np.delete(x, excluded, axis=0)
        assert len(read) == len(expected)
        order = np.lexsort(read.T)
        np.testing.assert_array_equal(read[order], expected[np.lexsort(expected.T)])
        for shard in shards:
            assert shard  # one row group alone is cut into a piece per rank
            assert all(sum(g.rows for g in b) <= 1000 for b in plan.buffers(shard))


def test_bad_values_are_refused_naming_the_column_and_global_row(tmp_path: Path) -> None:
    path = tmp_path / "ref.parquet"
    frame = pd.DataFrame({"a": np.zeros(500), "b": np.zeros(500), "c": np.zeros(500)})
    frame.loc[432, "b"] = np.inf
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=200)
    stream = ReferenceStream(path, SCHEMA)

    with pytest.raises(InputError, match="row 432 of the reference") as refused:
        stream.sample(1000, seed=0)
    assert refused.value.column == "b"


def test_columns_and_format_are_checked_on_opening(tmp_path: Path) -> None:
    extra = tmp_path / "extra.parquet"
    pd.DataFrame({"a": [1.0], "b": [1.0], "c": [1.0], "z": [1.0]}).to_parquet(extra)
    with pytest.raises(InputError) as refused:
        ReferenceStream(extra, SCHEMA)
    assert refused.value.column == "z"
    text = tmp_path / "ref.csv"
    text.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InputError, match="Parquet"):
        ReferenceStream(text, SCHEMA)
