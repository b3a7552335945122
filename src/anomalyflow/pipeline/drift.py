"""The drift stage: Evidently on the batch against the reference production learned from."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from anomalyflow.atomic import write_json
from anomalyflow.data.loaders import Table, read_reference
from anomalyflow.drift.report import SCORE_COLUMN, DriftResult, detect_drift
from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.production import production_detector


def check_drift(ctx: RunContext, batch: Table) -> DriftResult:
    """Drift of the features, of production's scores and of the label rate."""
    schema, paths = ctx.schema, ctx.paths
    reference = read_reference(paths.reference, schema).frame
    assert reference is not None and batch.frame is not None
    current = batch.frame
    production = production_detector(schema, ctx.params.registry)
    if production is not None:
        features = reference[list(schema.features)].to_numpy(np.float32)
        reference = reference.assign(**{SCORE_COLUMN: production.decision_function(features)})
        current = current.assign(**{SCORE_COLUMN: production.decision_function(batch.x)})
    result = detect_drift(
        reference,
        current,
        schema.features,
        ctx.params.drift,
        paths.drift,
        label=schema.label,
        reference_labels=_trained_labels(ctx),
    )
    write_json(paths.drift / "summary.json", drift_summary(result), default=str)
    score = result.score_drift.score if result.score_drift else None
    dvc_metrics = {"drift_detected": result.drift_detected, "share_drifted": result.share_drifted}
    write_json(paths.drift_metrics, dvc_metrics | {"score_drift": score})
    return result


def drift_summary(result: DriftResult) -> dict[str, object]:
    """The verdict people and ``dvc metrics`` read."""
    return {
        "drift_detected": result.drift_detected,
        "share_drifted": result.share_drifted,
        "drifted_columns": list(result.drifted_columns),
        "score_drift": asdict(result.score_drift) if result.score_drift else None,
        "label_drift": asdict(result.label_drift) if result.label_drift else None,
    }


def _trained_labels(ctx: RunContext) -> pd.Series | None:
    """Labels the latest model trained on, for the label-rate comparison."""
    label, saved_file = ctx.schema.label, ctx.paths.reference_labels
    if not label or not saved_file.exists():
        return None
    saved = pd.read_parquet(saved_file)
    return saved.get(label)  # absent after training on another schema
