"""The suite run per Parquet row group on a 2-worker Dask cluster gives the result GX
gives on the whole batch: the same verdict and, expectation by expectation, the same
outcome, including batches one partition alone would pass or fail wrongly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anomalyflow.partitions import split
from anomalyflow.validation.partitioned import check_partition, validate_partitions
from anomalyflow.validation.suite import (
    DataValidationError,
    ValidationResult,
    stored_suite,
    validate_batch,
)

pytest.importorskip("distributed")


def _parquet(frame: pd.DataFrame, path: Path, group_rows: int) -> Path:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, row_group_size=group_rows)
    return path


def _both(root: Path, frame: pd.DataFrame, path: Path, dask_client: object) -> tuple:  # type: ignore[type-arg]
    """The one-process result and the partitioned one (or the refusal each raised)."""
    results = []
    for run in (
        lambda: validate_batch(root, frame, path),
        lambda: validate_partitions(root, split(path, 1) or [], dask_client, path),  # type: ignore[arg-type]
    ):
        try:
            results.append(run())
        except DataValidationError as refused:
            results.append(refused)
    return tuple(results)


def _assert_same(one: ValidationResult, merged: ValidationResult) -> None:
    assert merged.success == one.success and merged.evaluated == one.evaluated
    assert len(merged.outcomes) == len(one.outcomes)
    for a, b in zip(one.outcomes, merged.outcomes, strict=True):
        assert (a.expectation, a.column, a.rule, a.success) == (
            b.expectation,
            b.column,
            b.rule,
            b.success,
        )
        if isinstance(a.observed, float):
            assert b.observed == pytest.approx(a.observed, rel=1e-12)
        else:
            assert b.observed == a.observed


def test_clean_batch_of_four_row_groups_passes_as_in_one_process(
    project: tuple[Path, pd.DataFrame], dask_client: object, tmp_path: Path
) -> None:
    root, holdout = project
    path = _parquet(holdout, tmp_path / "batch.parquet", 500)
    one, merged = _both(root, pd.read_parquet(path), path, dask_client)
    assert merged.partitions == 4
    _assert_same(one, merged)


def test_one_partition_out_of_range_fails_the_whole_batch(
    project: tuple[Path, pd.DataFrame], dask_client: object, tmp_path: Path
) -> None:
    root, holdout = project
    bad = holdout.copy()
    bad.loc[1000:1499, "hour"] += 1000  # the third row group only: 25% of the batch
    path = _parquet(bad, tmp_path / "batch.parquet", 500)
    one, merged = _both(root, bad, path, dask_client)
    assert isinstance(one, DataValidationError) and isinstance(merged, DataValidationError)
    assert str(path) in str(merged)
    _assert_same(one.result, merged.result)
    assert [(f.expectation, f.column) for f in merged.result.failures] == [
        ("expect_column_values_to_be_between", "hour")
    ]


def test_counts_are_merged_where_a_partition_alone_would_fail(
    project: tuple[Path, pd.DataFrame], dask_client: object, tmp_path: Path
) -> None:
    """4 row groups of 80 rows: each is under min_rows (100), and the first holds 2 of
    its 80 values out of range (2.5%, over the 1% allowed), yet the batch of 320 rows
    has enough rows and 0.6% out of range: it passes, as it does in one process."""
    root, holdout = project
    batch = holdout.head(320).copy()
    batch.loc[:1, "amount"] = 1e9
    path = _parquet(batch, tmp_path / "batch.parquet", 80)
    parts = split(path, 1)
    assert parts is not None and len(parts) == 4
    alone = check_partition(stored_suite(root), parts[0])
    failed_alone = {r["expectation_config"]["type"] for r in alone.results if not r["success"]}
    assert failed_alone == {
        "expect_table_row_count_to_be_between",
        "expect_column_values_to_be_between",
    }
    one, merged = _both(root, batch, path, dask_client)
    assert one.success
    _assert_same(one, merged)


def test_a_folder_of_files_is_validated_per_file_as_their_concatenation(
    project: tuple[Path, pd.DataFrame], dask_client: object, tmp_path: Path
) -> None:
    root, holdout = project
    folder = tmp_path / "batch"
    folder.mkdir()
    _parquet(holdout.iloc[:1200], folder / "part-0.parquet", 5000)
    _parquet(holdout.iloc[1200:], folder / "part-1.parquet", 5000)
    one, merged = _both(root, holdout, folder, dask_client)
    assert merged.partitions == 2
    _assert_same(one, merged)


def test_an_expectation_no_partition_can_judge_runs_the_suite_in_one_process(
    project: tuple[Path, pd.DataFrame], dask_client: object, tmp_path: Path
) -> None:
    """A hand-added median: a partition's median says nothing of the batch's."""
    root, holdout = project
    edited = tmp_path / "project"
    shutil.copytree(root / "gx", edited / "gx")
    suite_file = edited / "gx" / "expectations" / "incoming_batch.json"
    suite = json.loads(suite_file.read_text())
    median = {"column": "hour", "min_value": 100, "max_value": 200}  # fails on this batch
    suite["expectations"].append(
        {"type": "expect_column_median_to_be_between", "kwargs": median, "meta": {}}
    )
    suite_file.write_text(json.dumps(suite))
    path = _parquet(holdout, tmp_path / "batch.parquet", 500)
    one, merged = _both(edited, holdout, path, dask_client)
    assert isinstance(one, DataValidationError) and isinstance(merged, DataValidationError)
    assert merged.result.partitions == 1  # not merged: GX judged the whole batch
    _assert_same(one.result, merged.result)
