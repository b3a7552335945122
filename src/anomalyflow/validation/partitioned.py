"""The suite on a large batch, one partition per Dask task, merged into one result.

Each worker runs the stored suite with Great Expectations on its partition; the merge
rebuilds, from what every partition counted, the result GX gives on the whole batch.
Verdicts are never AND-ed where that would differ: a row count is a sum (a partition
smaller than ``min_rows`` does not fail a large batch; partitions each under a
``max_value`` may exceed it together), a ``mostly`` rule is judged on the summed counts
(one partition over the allowed share does not fail a batch within it), and a mean is
re-weighted from each partition's sum and count. A rule every partition must meet on
its own (the columns, their types) fails the whole batch if any partition breaks it.

An expectation this module cannot merge (a hand-edited suite may add a median, a
uniqueness or an ordering rule, which no partition can judge alone) makes the whole
suite run as one frame in this process, with a warning naming it: slower, never wrong.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from anomalyflow.partitions import Partition, read_partition
from anomalyflow.telemetry import disable_telemetry
from anomalyflow.validation.results import outcomes_from_gx
from anomalyflow.validation.suite import (
    DataValidationError,
    ValidationResult,
    stored_suite,
    validate_batch,
)

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

PARTIAL_UNEXPECTED = 20  # GX's SUMMARY format lists this many unexpected values
# How each expectation type's per-partition results combine into the batch's.
MERGE_BY_KIND = {
    "expect_table_columns_to_match_set": "every",  # a property of each file, not of rows
    "expect_column_values_to_be_in_type_list": "every",
    "expect_table_row_count_to_be_between": "row_count",
    "expect_column_values_to_not_be_null": "counts",
    "expect_column_values_to_be_between": "counts",
    "expect_column_values_to_be_in_set": "counts",
    "expect_column_mean_to_be_between": "mean",
}


@dataclass(frozen=True)
class PartitionChecked:
    """What GX found in one partition, plus what a mean needs to be merged."""

    rows: int
    results: list[dict[str, Any]]  # GX's result per expectation, in the suite's order
    sums: dict[str, tuple[int, float | None]]  # column: (values present, their sum)


def unmergeable(suite: dict[str, Any]) -> list[str]:
    """The suite's expectation types that no partition can judge alone."""
    return sorted({e["type"] for e in suite["expectations"]} - set(MERGE_BY_KIND))


def validate_partitions(
    project_dir: Path, parts: list[Partition], client: Client, source: Path
) -> ValidationResult:
    """Validate ``parts`` on ``client``'s workers; the result the whole batch would get.

    Raises:
        DataValidationError: naming ``source`` and each failed expectation, as without Dask.
    """
    suite = stored_suite(project_dir)
    others = unmergeable(suite)
    if others:
        log.warning(
            "%s: validated in one process: the suite's %s cannot be merged from partitions",
            source,
            ", ".join(others),
        )
        frame = pd.concat([read_partition(p) for p in parts], ignore_index=True)
        return validate_batch(project_dir, frame, source)
    futures = [client.submit(check_partition, suite, part, pure=False) for part in parts]
    merged = merge_partitions(suite, client.gather(futures))
    result = ValidationResult(
        success=merged["success"],
        evaluated=len(merged["results"]),
        data_docs=None,  # GX renders Data Docs only from a run of its own
        outcomes=outcomes_from_gx(merged),
        partitions=len(parts),
    )
    if not result.success:
        raise DataValidationError(source, result)
    return result


def check_partition(suite: dict[str, Any], part: Partition) -> PartitionChecked:
    """Run the suite on one partition in a throwaway GX context (runs on a worker)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    disable_telemetry()
    frame = read_partition(part)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("partition")
        .add_dataframe_asset("partition")
        .add_batch_definition_whole_dataframe("partition")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    expectations = gx.ExpectationSuite(name=suite["name"], expectations=suite["expectations"])
    results = batch.validate(expectations).to_json_dict()["results"]
    means = {
        e["kwargs"]["column"]
        for e in suite["expectations"]
        if MERGE_BY_KIND.get(e["type"]) == "mean"
    }
    return PartitionChecked(len(frame), results, {c: _sum(frame, c) for c in means})


def _sum(frame: pd.DataFrame, column: str) -> tuple[int, float | None]:
    """Values present in ``column`` and their sum; None where GX could take no mean."""
    if column not in frame or not pd.api.types.is_numeric_dtype(frame[column]):
        return 0, None
    return int(frame[column].count()), float(frame[column].sum())


def merge_partitions(suite: dict[str, Any], checked: list[PartitionChecked]) -> dict[str, Any]:
    """The suite's result on the whole batch, in GX's JSON form, from every partition's.

    Raises:
        RuntimeError: a worker's GX ran another number of expectations than the suite
            holds (a GX that dropped an expectation it could not read).
    """
    merged = []
    for i, expectation in enumerate(suite["expectations"]):
        found = [c.results[i] for c in checked if i < len(c.results)]
        if len(found) != len(checked) or any(
            r["expectation_config"]["type"] != expectation["type"] for r in found
        ):
            raise RuntimeError(f"a partition's results do not follow the suite at {expectation}")
        failed = [r for r in found if (r.get("exception_info") or {}).get("raised_exception")]
        if failed:  # GX could not compute it on a partition: the batch fails, closed
            merged.append(failed[0])
            continue
        success, result = _merged(expectation, found, checked)
        merged.append(
            {"expectation_config": found[0]["expectation_config"], "success": success}
            | {"result": result}
        )
    return {"success": all(r["success"] for r in merged), "results": merged}


def _merged(
    expectation: dict[str, Any], found: list[dict[str, Any]], checked: list[PartitionChecked]
) -> tuple[bool, dict[str, Any]]:
    """Verdict and result of one expectation over all partitions."""
    kind, kwargs = MERGE_BY_KIND[expectation["type"]], expectation["kwargs"]
    if kind == "every":
        failing = [r for r in found if not r["success"]]
        return not failing, (failing or found)[0]["result"]
    if kind == "row_count":
        rows = sum(c.rows for c in checked)
        return _between(rows, kwargs), {"observed_value": rows}
    if kind == "mean":
        present = [c.sums[kwargs["column"]] for c in checked]
        count = sum(n for n, _ in present)
        sums = [s for _, s in present if s is not None]
        mean = sum(sums) / count if count and len(sums) == len(present) else None
        return mean is not None and _between(mean, kwargs), {"observed_value": mean}
    return _counted(found, kwargs.get("mostly", 1.0))


def _counted(found: list[dict[str, Any]], mostly: float) -> tuple[bool, dict[str, Any]]:
    """A row-by-row rule judged on the summed counts, as GX judges the whole column.

    GX counts ``not_be_null`` against every row and the other rules against the values
    present (missing values are neither expected nor unexpected).
    """
    results = [r["result"] for r in found]
    element = sum(r["element_count"] for r in results)
    unexpected = sum(r["unexpected_count"] for r in results)
    counts_missing = all("missing_count" in r for r in results)
    missing = sum(r["missing_count"] for r in results) if counts_missing else 0
    considered = element - missing
    success = considered == 0 or (considered - unexpected) / considered >= mostly
    share = unexpected / considered * 100 if considered else None
    merged: dict[str, Any] = {
        "element_count": element,
        "unexpected_count": unexpected,
        "unexpected_percent": share,
        "partial_unexpected_list": [
            value for r in results for value in r.get("partial_unexpected_list", [])
        ][:PARTIAL_UNEXPECTED],
    }
    if counts_missing:
        merged |= {
            "missing_count": missing,
            "missing_percent": missing / element * 100 if element else None,
            "unexpected_percent_total": unexpected / element * 100 if element else None,
            "unexpected_percent_nonmissing": share,
        }
    return success, merged


def _between(value: float, kwargs: dict[str, Any]) -> bool:
    """GX's bounds: inclusive unless ``strict_min`` / ``strict_max``; None is unbounded."""
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    above = low is None or (value > low if kwargs.get("strict_min") else value >= low)
    below = high is None or (value < high if kwargs.get("strict_max") else value <= high)
    return above and below
