"""Great Expectations: a suite built from the schema and the reference data, and a gate
that validates every incoming batch against it.

The suite lives in a file-based GX project folder (``gx/`` by default) in the
repository, so people can read and edit it by hand. It records the schema it was built
for in its ``meta`` and is rebuilt when that schema changes, or on request.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from anomalyflow.data.schema import Schema
from anomalyflow.errors import Refusal
from anomalyflow.params import ValidationParams
from anomalyflow.telemetry import disable_telemetry
from anomalyflow.validation.results import ExpectationOutcome, outcomes_from_gx

SUITE = "incoming_batch"
_SCHEMA_META = "anomalyflow_schema"
_SOURCE, _ASSET, _BATCH = "anomalyflow", "incoming_batch", "whole_batch"
_NUMERIC_TYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "bool",
    "INTEGER",
    "FLOAT",
    "BOOLEAN",
]


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating one batch."""

    success: bool
    evaluated: int
    data_docs: Path | None
    outcomes: tuple[ExpectationOutcome, ...] = ()  # every expectation, passed or not
    partitions: int = 1  # >1: validated per partition on Dask and merged

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        """The broken rules, in the suite's order."""
        return tuple(o for o in self.outcomes if not o.success)


class DataValidationError(Refusal):
    """A batch broke the suite; names the file and every failed expectation."""

    def __init__(self, source: Path | str, result: ValidationResult) -> None:
        self.source = Path(source)
        self.result = result
        lines = "\n".join(f"  - {f.describe()}" for f in result.failures)
        super().__init__(
            f"{self.source}: {len(result.failures)} of {result.evaluated} "
            f"expectations failed\n{lines}"
        )


def build_expectations(
    schema: Schema, reference: pd.DataFrame, params: ValidationParams
) -> list[Any]:
    """Expectations for batches like ``reference``: columns, types, nulls, ranges, labels."""
    import great_expectations.expectations as gxe

    expectations: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(schema.columns), exact_match=True),
        gxe.ExpectTableRowCountToBeBetween(min_value=params.min_rows),
    ]
    for column in schema.features:
        values = reference[column].astype("float64")
        low, high = float(values.min()), float(values.max())
        margin = params.range_tolerance * max(high - low, abs(high), 1e-9)
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=column),
            gxe.ExpectColumnValuesToBeInTypeList(column=column, type_list=_NUMERIC_TYPES),
            # Anomalies are out-of-range values by nature: a few may exceed the band.
            gxe.ExpectColumnValuesToBeBetween(
                column=column,
                min_value=low - margin,
                max_value=high + margin,
                mostly=params.in_range_share,
            ),
        ]
    if schema.label is not None:
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=schema.label),
            gxe.ExpectColumnValuesToBeInSet(column=schema.label, value_set=[0, 1]),
            gxe.ExpectColumnMeanToBeBetween(
                column=schema.label,
                min_value=params.min_labeled_anomaly_rate,
                max_value=params.max_labeled_anomaly_rate,
            ),
        ]
    return expectations


def build_suite(
    project_dir: Path, schema: Schema, reference: pd.DataFrame, params: ValidationParams
) -> Path:
    """Write (or overwrite) the suite into the GX project folder; returns its JSON file."""
    import great_expectations as gx

    context = _context(project_dir)
    suite = gx.ExpectationSuite(name=SUITE, meta={_SCHEMA_META: _schema_record(schema)})
    for expectation in build_expectations(schema, reference, params):
        suite.add_expectation(expectation)
    context.suites.add_or_update(suite)
    _forget_checkpoint(context)  # the next validation binds the new suite afresh
    return project_dir / "gx" / "expectations" / f"{SUITE}.json"


def _forget_checkpoint(context: Any) -> None:
    from great_expectations.exceptions import DataContextError

    for store in (context.checkpoints, context.validation_definitions):
        with contextlib.suppress(DataContextError, ValueError, KeyError):
            store.delete(SUITE)


def suite_fits(project_dir: Path, schema: Schema) -> bool:
    """Whether a suite (possibly hand-edited) was built for ``schema``'s columns already.

    A suite for other columns would reject every batch, or pass batches it never checks.
    """
    path = project_dir / "gx" / "expectations" / f"{SUITE}.json"
    if not path.exists():
        return False
    meta = json.loads(path.read_text()).get("meta") or {}
    return bool(meta.get(_SCHEMA_META) == _schema_record(schema))


def _schema_record(schema: Schema) -> dict[str, Any]:
    """The schema as the suite's JSON holds it: readable in a diff, compared as is."""
    return {
        "features": list(schema.features),
        "label": schema.label,
        "id": schema.id,
        "timestamp": schema.timestamp,
    }


def validate_batch(project_dir: Path, frame: pd.DataFrame, source: Path | str) -> ValidationResult:
    """Validate ``frame`` with the stored suite, build Data Docs, raise if anything failed.

    Raises:
        DataValidationError: naming ``source`` and each failed expectation.
    """
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.exceptions import DataContextError

    context = _context(project_dir)
    try:  # made once: recreating it would rewrite the ids in the committed project files
        checkpoint = context.checkpoints.get(SUITE)
    except DataContextError:
        batch = (
            context.data_sources.add_or_update_pandas(_SOURCE)
            .add_dataframe_asset(_ASSET)
            .add_batch_definition_whole_dataframe(_BATCH)
        )
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=SUITE, data=batch, suite=context.suites.get(SUITE))
        )
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=SUITE,
                validation_definitions=[definition],
                actions=[UpdateDataDocsAction(name="data_docs")],
            )
        )
    outcome = checkpoint.run(batch_parameters={"dataframe": frame})
    run = next(iter(outcome.run_results.values()))
    outcomes = outcomes_from_gx(run.to_json_dict())
    docs = project_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    result = ValidationResult(
        success=outcome.success,
        evaluated=len(run.results),
        data_docs=docs if docs.exists() else None,
        outcomes=outcomes,
    )
    if not result.success:
        raise DataValidationError(source, result)
    return result


def stored_suite(project_dir: Path) -> dict[str, Any]:
    """The suite as GX reads it from the project (hand edits included), in JSON form."""
    suite: dict[str, Any] = _context(project_dir).suites.get(SUITE).to_json_dict()
    return suite


def _context(project_dir: Path) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    disable_telemetry()
    context = gx.get_context(mode="file", project_root_dir=str(project_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context
