"""The drift stage: Evidently on the batch against the reference production learned from.

Evidently's per-column tests (Wasserstein distance, K-S, Jensen-Shannon) need every
row of both sides in one process, and no partition's verdict says anything about the
batch's. So with ``task_runner: dask`` the stage compares bounded uniform samples of the
batch and of the reference (``orchestration.drift_sample_rows`` each, drawn per
partition on Dask, the run's seed), which converge on the full comparison; a batch and
reference within the bound are compared whole, exactly as in one process, and start no
cluster. Production scores only the sampled rows. The sample is stated in ``summary.json`` and atop
``drift.html``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from anomalyflow.atomic import write_json
from anomalyflow.data.loaders import Table, read_reference, table_from_frame
from anomalyflow.drift.report import SCORE_COLUMN, DriftResult, DriftSample, detect_drift
from anomalyflow.partitions import on_dask, parquet_rows, partition_client, sample_source
from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.production import production_detector


def check_drift(ctx: RunContext, batch: Table, source: Path | None = None) -> DriftResult:
    """Drift of the features, of production's scores and of the label rate.

    Args:
        batch: the batch, read and checked.
        source: its file (or folder); with ``task_runner: dask`` the batch is sampled
            from it per partition instead of compared whole.
    """
    schema, paths = ctx.schema, ctx.paths
    sample: DriftSample | None = None
    reference: pd.DataFrame | None
    current: pd.DataFrame | None
    if source is not None and _too_large(ctx, batch):
        reference, current, sample = _samples(ctx, source)
    else:
        reference, current = read_reference(paths.reference, schema).frame, batch.frame
    assert reference is not None and current is not None
    production = production_detector(schema, ctx.params.registry)
    if production is not None:
        reference = reference.assign(
            **{SCORE_COLUMN: production.decision_function(_features(ctx, reference))}
        )
        current = current.assign(
            **{SCORE_COLUMN: production.decision_function(_features(ctx, current))}
        )
    result = detect_drift(
        reference,
        current,
        schema.features,
        ctx.params.drift,
        paths.drift,
        label=schema.label,
        reference_labels=_trained_labels(ctx),
        sample=sample,
    )
    write_json(paths.drift / "summary.json", drift_summary(result), default=str)
    score = result.score_drift.score if result.score_drift else None
    dvc_metrics = {"drift_detected": result.drift_detected, "share_drifted": result.share_drifted}
    write_json(paths.drift_metrics, dvc_metrics | {"score_drift": score})
    return result


def drift_summary(result: DriftResult) -> dict[str, object]:
    """The verdict people and ``dvc metrics`` read."""
    summary: dict[str, object] = {
        "drift_detected": result.drift_detected,
        "share_drifted": result.share_drifted,
        "drifted_columns": list(result.drifted_columns),
        "score_drift": asdict(result.score_drift) if result.score_drift else None,
        "label_drift": asdict(result.label_drift) if result.label_drift else None,
    }
    if result.sample is not None:
        summary["sample"] = asdict(result.sample) | {"note": result.sample.describe()}
    return summary


def _too_large(ctx: RunContext, batch: Table) -> bool:
    """With ``task_runner: dask``: whether the batch or the reference exceeds the sample
    bound (a CSV reference might); both within it are compared whole, as without Dask."""
    bound = ctx.params.orchestration.drift_sample_rows
    if not on_dask(ctx.params.orchestration):
        return False
    reference_rows = parquet_rows(ctx.paths.reference)
    return len(batch.x) > bound or reference_rows is None or reference_rows > bound


def _samples(ctx: RunContext, source: Path) -> tuple[pd.DataFrame, pd.DataFrame, DriftSample]:
    """Uniform samples of the reference and of the batch, checked as their files are."""
    rows, seed = ctx.params.orchestration.drift_sample_rows, ctx.params.runtime.seed
    with partition_client(ctx.params.orchestration) as client:
        reference, reference_total = sample_source(client, ctx.paths.reference, rows, seed)
        current, batch_total = sample_source(client, source, rows, seed)
    schema = ctx.schema
    reference_schema = schema if schema.label in reference.columns else schema.without_label()
    table_from_frame(ctx.paths.reference, reference, reference_schema)
    table_from_frame(source, current, schema)
    taken = DriftSample(len(current), batch_total, len(reference), reference_total, seed)
    return reference, current, taken


def _features(ctx: RunContext, frame: pd.DataFrame) -> np.ndarray:
    """The rows production scores, ``(rows, features)`` float32, as a Table holds them."""
    return frame[list(ctx.schema.features)].to_numpy(np.float32)


def _trained_labels(ctx: RunContext) -> pd.Series | None:
    """Labels the latest model trained on, for the label-rate comparison."""
    label, saved_file = ctx.schema.label, ctx.paths.reference_labels
    if not label or not saved_file.exists():
        return None
    saved = pd.read_parquet(saved_file)
    return saved.get(label)  # absent after training on another schema
