"""The validate stage: Great Expectations on the incoming batch; a failure quarantines it."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from anomalyflow.atomic import write_json
from anomalyflow.data.loaders import read_frame, read_reference
from anomalyflow.partitions import on_dask, partition_client, split
from anomalyflow.paths import ArtifactPaths
from anomalyflow.pipeline.context import RunContext
from anomalyflow.validation.partitioned import validate_partitions
from anomalyflow.validation.suite import (
    DataValidationError,
    ValidationResult,
    build_suite,
    suite_fits,
    validate_batch,
)


def validate(ctx: RunContext, batch: Path) -> ValidationResult:
    """Validate an incoming batch; a failing batch goes to quarantine with its report.

    The suite is built from the reference data the first time or when the schema
    changed, and otherwise only read, so hand edits to ``gx/expectations/`` stick.
    With ``task_runner: dask`` a Parquet batch of several row groups (or a folder of
    Parquet files) is validated per partition on Dask, with the same result.
    """
    project = Path(ctx.params.validation.project_dir)
    if not suite_fits(project, ctx.schema):
        build_reference_suite(ctx)
    orchestration = ctx.params.orchestration
    parts = split(batch, orchestration.partition_rows) if on_dask(orchestration) else None
    try:
        if parts is None:
            result = validate_batch(project, read_frame(batch), batch)
        else:
            with partition_client(ctx.params.orchestration) as client:
                result = validate_partitions(project, parts, client, batch)
    except DataValidationError as error:
        quarantine(batch, error, ctx.paths)
        raise
    summary = {
        "source": str(batch),
        "success": result.success,
        "evaluated": result.evaluated,
        "data_docs": str(result.data_docs),
        "expectations": [asdict(outcome) for outcome in result.outcomes],
    }
    if result.partitions > 1:
        summary["partitions"] = result.partitions
    write_json(ctx.paths.validation, summary, default=str)
    return result


def build_reference_suite(ctx: RunContext) -> Path:
    """(Re)build the suite from the reference data, dropping hand edits; its GX project."""
    project = Path(ctx.params.validation.project_dir)
    reference = read_reference(ctx.paths.reference, ctx.schema).frame
    assert reference is not None
    build_suite(project, ctx.schema, reference, ctx.params.validation)
    return project / "gx"


def quarantine(batch: Path, error: DataValidationError, paths: ArtifactPaths) -> Path:
    """Keep a copy of a rejected batch with its validation report in quarantine.

    The batch (a file, or a folder of Parquet files) is copied, never moved: what the
    user named is theirs to keep. The scheduled flow removes batches from its own
    incoming folder.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = paths.quarantine / f"{batch.stem}-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    report = {
        "source": str(batch),
        "evaluated": error.result.evaluated,
        "failures": [asdict(f) | {"message": f.describe()} for f in error.result.failures],
        "data_docs": str(error.result.data_docs) if error.result.data_docs else None,
    }
    write_json(folder / "validation.json", report, default=str)
    if batch.is_dir():
        shutil.copytree(batch, folder / batch.name)
    else:
        shutil.copy2(batch, folder / batch.name)
    return folder
