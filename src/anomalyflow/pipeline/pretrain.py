"""The pretrain stage: the versioned backbone, reused while nothing that shapes it changed."""

from __future__ import annotations

from dataclasses import replace

from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.lineage import file_digest, pretrain_fingerprint
from anomalyflow.training.distributed import reference_for_pretraining, rows_in_memory


def pretrain(ctx: RunContext) -> tuple[AnomalyDetector, bool]:
    """Reuse the versioned backbone unless params, the reference data or its features changed.

    Returns:
        The backbone detector and whether it was reused.
    """
    params, paths, schema = ctx.params, ctx.paths, ctx.schema
    fingerprint = pretrain_fingerprint(params, paths.reference)
    if (paths.backbone / "detector.json").exists():
        saved = AnomalyDetector.load(paths.backbone, params.runtime)
        same_features = saved.feature_names_ == schema.features
        if same_features and saved.lineage_.get("pretrain_fingerprint") == fingerprint:
            return saved, True
    reference = reference_for_pretraining(paths.reference, schema, params.pretrain)
    detector = AnomalyDetector(DetectorSettings.from_params(params))
    detector.pretrain(reference, schema.features, paths.checkpoints)
    detector.lineage_ = {
        "pretrain_fingerprint": fingerprint,
        "reference_md5": file_digest(paths.reference),
    }
    # The backbone alone is the label-free detector; its threshold needs no labels.
    detector.settings = replace(
        detector.resolved_settings(), threshold=replace(params.threshold, method="alert_rate")
    )
    detector.refit_threshold(rows_in_memory(reference, params.pretrain, params.runtime.seed), None)
    detector.save(paths.backbone)
    return detector, False
