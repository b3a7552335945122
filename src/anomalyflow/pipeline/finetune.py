"""The fine-tune stage: a candidate from the backbone (or production) on the batch's labels."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score

from anomalyflow.atomic import atomic_folder
from anomalyflow.data.loaders import Table
from anomalyflow.data.schema import InputError
from anomalyflow.data.splits import stratified_split, time_split
from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.lineage import file_digest
from anomalyflow.pipeline.production import production_version
from anomalyflow.registry.store import open_registry

THRESHOLD_SHARE = 0.3  # latest share of the batch's rows, kept apart to fit the threshold


@dataclass(frozen=True)
class FineTuned:
    """A fine-tuned candidate (not yet saved) and its AUPRC on the threshold rows."""

    detector: AnomalyDetector
    seed: int
    selection_auprc: float  # picks the best of several seeds
    warm_started_from: str | None = None  # the production version it continued, if any


def finetune(ctx: RunContext, batch: Table, source: Path, seed: int | None = None) -> FineTuned:
    """Fine-tune on the labels of ``batch`` (the training window, read from ``source``);
    fit the threshold on its latest rows.

    ``seed`` overrides ``runtime.seed`` so several seeds can train side by side (each
    without checkpoints: they would share a file).
    """
    assert batch.y is not None
    if not (batch.y == 1).any():
        raise InputError(source, ctx.schema.label, "no labeled anomaly (1) to fine-tune on")
    fit_rows, threshold_rows = _split_rows(ctx, batch)
    runtime = ctx.params.runtime if seed is None else replace(ctx.params.runtime, seed=seed)
    production = None
    if ctx.params.finetune.warm_start == "production":
        production = production_version(ctx.schema, ctx.params.registry)
    registry = open_registry(ctx.params.registry, ctx.schema.features)
    candidate = (
        registry.load(production.version, runtime)  # verified
        if production
        else AnomalyDetector.load(ctx.paths.backbone, runtime)
    )
    candidate.settings = replace(DetectorSettings.from_params(ctx.params), runtime=runtime)
    checkpoints = ctx.paths.checkpoints if seed is None else None
    candidate.finetune(
        batch.x[fit_rows], batch.y[fit_rows], checkpoints, warm_start=production is not None
    )
    candidate.refit_threshold(batch.x[threshold_rows], batch.y[threshold_rows])
    labels = batch.y[threshold_rows]
    scores = candidate.decision_function(batch.x[threshold_rows])
    auprc = float(average_precision_score(labels, scores)) if labels.any() else 0.0
    return FineTuned(candidate, runtime.seed, auprc, production.version if production else None)


def save_candidate(
    best: FineTuned,
    backbone: AnomalyDetector,
    batch_path: Path,
    ctx: RunContext,
    window: str,
) -> AnomalyDetector:
    """Record lineage on the chosen candidate, save it in the run's own folder, then
    publish a copy to ``artifacts/candidate`` (DVC's output, the later stages' input).

    ``batch_path`` is the batch that started the run, ``window`` the digest of the
    training window the candidate learned from.
    """
    candidate = best.detector
    if best.warm_started_from:  # production's lineage: its backbone, scaler and reference
        origin = candidate.lineage_ | {"warm_started_from": best.warm_started_from}
    else:
        backbone_weights = ctx.paths.backbone / "weights.safetensors"
        origin = backbone.lineage_ | {"backbone_weights_md5": file_digest(backbone_weights)}
    candidate.lineage_ = origin | {
        "batch_md5": file_digest(batch_path),
        "window_sha256": window,
        "finetune_seed": str(best.seed),
    }
    candidate.save(ctx.paths.run_candidate)
    with atomic_folder(ctx.paths.candidate) as staging:
        shutil.copytree(ctx.paths.run_candidate, staging, dirs_exist_ok=True)
    return candidate


def _split_rows(ctx: RunContext, batch: Table) -> tuple[np.ndarray, np.ndarray]:
    """Rows to fit on and the rows that fit the threshold: the latest, where time is known."""
    assert batch.y is not None
    timestamp = ctx.schema.timestamp
    if timestamp and batch.frame is not None:
        return time_split(batch.frame[timestamp].to_numpy(), THRESHOLD_SHARE)
    return stratified_split(batch.y, THRESHOLD_SHARE, ctx.params.runtime.seed)
