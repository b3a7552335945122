"""The retraining pipeline's steps as plain functions: no Prefect, no DVC.

``flows/retrain.py`` wraps each in a Prefect task and ``dvc.yaml`` runs each through
``anomalyflow <step>``; both call these same functions. Every step reads and writes
the files named in :mod:`anomalyflow.paths`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from anomalyflow.atomic import write_json
from anomalyflow.data.loaders import Table, read_reference, read_table
from anomalyflow.data.schema import InputError, Schema
from anomalyflow.data.splits import stratified_split, time_split
from anomalyflow.detector import AnomalyDetector
from anomalyflow.drift.report import SCORE_COLUMN, DriftResult, detect_drift
from anomalyflow.evaluation.curves import write_curves
from anomalyflow.evaluation.gates import (
    GateDecision,
    PairedComparison,
    apply_policy,
    compare_on_holdout,
)
from anomalyflow.evaluation.metrics import EvaluationReport, evaluate
from anomalyflow.evaluation.metrics import write_report as write_evaluation
from anomalyflow.jobs import CALIBRATION_SHARE, settings_from
from anomalyflow.params import Params
from anomalyflow.paths import ArtifactPaths
from anomalyflow.registry.store import (
    ModelVersion,
    RegistryError,
    RegistryState,
    open_registry,
)
from anomalyflow.reports.index import ReportInputs, write_report
from anomalyflow.scoring import shadow_compare
from anomalyflow.serving.server import smoke_test
from anomalyflow.validation.suite import (
    DataValidationError,
    ValidationResult,
    build_suite,
    suite_fits,
    validate_batch,
)


@dataclass(frozen=True)
class TrainingNeed:
    """Whether this run should train, and the reason people will read."""

    train: bool
    reason: str


def file_digest(path: Path) -> str:
    """MD5 of a file, the hash DVC records for it."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validate(
    batch: Path,
    params: Params,
    paths: ArtifactPaths,
    schema: Schema,
    rebuild_suite: bool = False,
) -> ValidationResult:
    """Validate an incoming batch; a failing batch goes to quarantine with its report.

    The suite is built from the reference data the first time, when the schema changed
    (or with ``rebuild_suite``), and otherwise only read, so hand edits to
    ``gx/expectations/`` stick.
    """
    project = Path(params.validation.project_dir)
    if rebuild_suite or not suite_fits(project, schema):
        reference = read_reference(paths.reference, schema).frame
        assert reference is not None
        build_suite(project, schema, reference, params.validation)
    try:
        frame = pd.read_parquet(batch) if batch.suffix != ".csv" else pd.read_csv(batch)
    except (OSError, ValueError) as error:
        raise InputError(batch, None, f"cannot be read ({error})") from error
    try:
        result = validate_batch(project, frame, batch)
    except DataValidationError as error:
        quarantine(batch, error, paths)
        raise
    _write_json(
        paths.validation,
        {
            "source": str(batch),
            "success": result.success,
            "evaluated": result.evaluated,
            "data_docs": str(result.data_docs),
        },
    )
    return result


def quarantine(batch: Path, error: DataValidationError, paths: ArtifactPaths) -> Path:
    """Move a rejected batch, with its validation report, out of the incoming path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = paths.quarantine / f"{batch.stem}-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    report = {
        "source": str(batch),
        "evaluated": error.result.evaluated,
        "failures": [asdict(f) | {"message": f.describe()} for f in error.result.failures],
        "data_docs": str(error.result.data_docs) if error.result.data_docs else None,
    }
    _write_json(folder / "validation.json", report)
    shutil.move(str(batch), folder / batch.name)
    return folder


def check_drift(batch: Table, params: Params, paths: ArtifactPaths, schema: Schema) -> DriftResult:
    """Drift of the batch against the reference (the data production was trained on)."""
    reference = read_reference(paths.reference, schema).frame
    assert reference is not None and batch.frame is not None
    current = batch.frame
    production = _production_for(schema, params)
    if production is not None:
        reference = reference.assign(
            **{
                SCORE_COLUMN: production.decision_function(
                    reference[list(schema.features)].to_numpy(np.float32)
                )
            }
        )
        current = current.assign(**{SCORE_COLUMN: production.decision_function(batch.x)})
    reference_labels = None
    if schema.label and paths.reference_labels.exists():
        saved = pd.read_parquet(paths.reference_labels)
        if schema.label in saved:  # absent when the last training used another schema
            reference_labels = saved[schema.label]
    result = detect_drift(
        reference,
        current,
        schema.features,
        params.drift,
        paths.drift,
        label=schema.label,
        reference_labels=reference_labels,
    )
    summary = {
        "drift_detected": result.drift_detected,
        "share_drifted": result.share_drifted,
        "drifted_columns": list(result.drifted_columns),
        "score_drift": asdict(result.score_drift) if result.score_drift else None,
        "label_drift": asdict(result.label_drift) if result.label_drift else None,
    }
    _write_json(paths.drift / "summary.json", summary)
    return result


def nothing_changed(batch_digest: str, params: Params, paths: ArtifactPaths) -> bool:
    """True when the last run already checked this very batch with these params against
    this reference, and its candidate is in place: the run has nothing to do."""
    if not paths.state.exists() or not (paths.candidate / "detector.json").exists():
        return False
    state = json.loads(paths.state.read_text())
    return bool(
        state.get("checked") == [batch_digest, params_digest(params), file_digest(paths.reference)]
    )


def record_check(batch_digest: str, params: Params, paths: ArtifactPaths) -> None:
    """Remember that this batch passed validation and drift with these params."""
    state = json.loads(paths.state.read_text()) if paths.state.exists() else {}
    state["checked"] = [batch_digest, params_digest(params), file_digest(paths.reference)]
    _write_json(paths.state, state)


def training_need(
    drift: DriftResult, batch_digest: str, params: Params, paths: ArtifactPaths
) -> TrainingNeed:
    """Train on the first run, on changed params, drift or new labels; not in cooldown."""
    if not paths.state.exists() or not paths.candidate.exists():
        return TrainingNeed(True, "no model trained yet")
    state = json.loads(paths.state.read_text())
    if state.get("params_digest") != params_digest(params):
        return TrainingNeed(True, "params changed since the last training")
    hours = (time.time() - float(state["trained_at"])) / 3600.0
    if hours < params.drift.cooldown_hours and not params.drift.ignore_cooldown:
        return TrainingNeed(
            False, f"cooldown: last trained {hours:.1f} h ago (< {params.drift.cooldown_hours} h)"
        )
    if drift.drift_detected:
        return TrainingNeed(
            True, f"drift in {len(drift.drifted_columns)} columns ({drift.share_drifted:.0%})"
        )
    if state.get("batch_digest") != batch_digest:
        return TrainingNeed(True, "new labeled batch")
    return TrainingNeed(False, "no drift and no new labels")


def pretrain(params: Params, paths: ArtifactPaths, schema: Schema) -> tuple[AnomalyDetector, bool]:
    """Reuse the versioned backbone unless params, the reference data or its features changed.

    Returns:
        The backbone detector and whether it was reused.
    """
    fingerprint = _pretrain_fingerprint(params, paths)
    if (paths.backbone / "detector.json").exists():
        saved = AnomalyDetector.load(paths.backbone, params.runtime)
        same_features = saved.feature_names_ == schema.features
        if same_features and saved.lineage_.get("pretrain_fingerprint") == fingerprint:
            return saved, True
    reference = read_reference(paths.reference, schema)
    detector = AnomalyDetector(settings_from(params))
    detector.pretrain(reference.x, schema.features, paths.checkpoints)
    detector.lineage_ = {
        "pretrain_fingerprint": fingerprint,
        "reference_md5": file_digest(paths.reference),
    }
    # The backbone alone is the label-free detector; its threshold needs no labels.
    detector.settings = replace(
        detector.settings, threshold=replace(params.threshold, method="alert_rate")
    )
    detector.refit_threshold(reference.x, None)
    detector.save(paths.backbone)
    return detector, False


@dataclass(frozen=True)
class FineTuned:
    """A fine-tuned candidate (not yet saved) and its AUPRC on the calibration rows."""

    detector: AnomalyDetector
    seed: int
    calibration_auprc: float
    warm_started_from: str | None = None  # the production version it continued, if any


def finetune(
    batch: Table,
    batch_path: Path,
    params: Params,
    paths: ArtifactPaths,
    schema: Schema,
    seed: int | None = None,
) -> FineTuned:
    """Fine-tune from the saved backbone on the batch's labels; threshold on its latest rows.

    ``seed`` overrides ``runtime.seed`` so several seeds can train side by side (each
    without checkpoints: they would share a file).
    """
    assert batch.y is not None
    if not (batch.y == 1).any():
        raise InputError(batch_path, schema.label, "no labeled anomaly (1) to fine-tune on")
    if schema.timestamp and batch.frame is not None:
        fit_rows, calibration_rows = time_split(
            batch.frame[schema.timestamp].to_numpy(), CALIBRATION_SHARE
        )
    else:
        fit_rows, calibration_rows = stratified_split(
            batch.y, CALIBRATION_SHARE, params.runtime.seed
        )
    runtime = params.runtime if seed is None else replace(params.runtime, seed=seed)
    production = None
    if params.finetune.warm_start == "production":
        production = _production_version(schema, params)
    candidate = AnomalyDetector.load(
        production.detector_dir if production else paths.backbone, runtime
    )
    candidate.settings = replace(settings_from(params), runtime=runtime)
    checkpoints = paths.checkpoints if seed is None else None
    candidate.finetune(
        batch.x[fit_rows], batch.y[fit_rows], checkpoints, warm_start=production is not None
    )
    candidate.refit_threshold(batch.x[calibration_rows], batch.y[calibration_rows])
    labels = batch.y[calibration_rows]
    auprc = (
        float(
            average_precision_score(labels, candidate.decision_function(batch.x[calibration_rows]))
        )
        if labels.any()
        else 0.0
    )
    return FineTuned(candidate, runtime.seed, auprc, production.version if production else None)


def save_candidate(
    best: FineTuned, backbone: AnomalyDetector, batch_path: Path, paths: ArtifactPaths
) -> AnomalyDetector:
    """Record lineage on the chosen candidate and save it to ``artifacts/candidate``."""
    candidate = best.detector
    if best.warm_started_from:  # production's lineage: its backbone, scaler and reference
        origin = candidate.lineage_ | {"warm_started_from": best.warm_started_from}
    else:
        origin = backbone.lineage_ | {
            "backbone_weights_md5": file_digest(paths.backbone / "weights.safetensors")
        }
    candidate.lineage_ = origin | {
        "batch_md5": file_digest(batch_path),
        "finetune_seed": str(best.seed),
    }
    candidate.save(paths.candidate)
    return candidate


def evaluate_candidate(
    candidate: AnomalyDetector,
    params: Params,
    paths: ArtifactPaths,
    schema: Schema,
) -> tuple[EvaluationReport, EvaluationReport | None, PairedComparison | None]:
    """Score the candidate and, when one exists, production on the frozen holdout."""
    holdout = read_table(paths.holdout, schema)
    assert holdout.y is not None
    scores = candidate.decision_function(holdout.x)
    report = evaluate(
        holdout.y, scores, candidate.threshold_, params.evaluation, seed=params.runtime.seed
    )
    write_evaluation(report, paths.evaluation)
    write_curves(holdout.y, scores, paths.plots)
    production = _production_for(schema, params)
    production_report, comparison = None, None
    if production is not None:
        production_scores = production.decision_function(holdout.x)
        production_report = evaluate(
            holdout.y,
            production_scores,
            production.threshold_,
            params.evaluation,
            seed=params.runtime.seed,
        )
        comparison = compare_on_holdout(
            holdout.y,
            scores,
            production_scores,
            params.gate.bootstrap_samples,
            params.gate.confidence_level,
            params.runtime.seed,
        )
    _write_json(
        paths.comparison,
        {
            "production": production_report.to_dict() if production_report else None,
            "comparison": asdict(comparison) if comparison else None,
        },
    )
    return report, production_report, comparison


def read_evaluation(
    paths: ArtifactPaths,
) -> tuple[EvaluationReport, EvaluationReport | None, PairedComparison | None]:
    """What :func:`evaluate_candidate` wrote, for a gate run on its own (DVC stage)."""
    report = EvaluationReport(**json.loads(paths.evaluation.read_text()))
    saved = json.loads(paths.comparison.read_text())
    production = EvaluationReport(**saved["production"]) if saved["production"] else None
    comparison = PairedComparison(**saved["comparison"]) if saved["comparison"] else None
    return report, production, comparison


def gate(
    report: EvaluationReport,
    production: EvaluationReport | None,
    comparison: PairedComparison | None,
    candidate: AnomalyDetector,
    params: Params,
    paths: ArtifactPaths,
    run_id: str | None,
) -> tuple[GateDecision, dict[str, Any]]:
    """Apply the promotion policy and write the decision record."""
    decision = apply_policy(report, comparison, params.gate)
    record = decision.to_dict() | {
        "decided_at": datetime.now(UTC).isoformat(),
        "candidate_metrics": report.to_dict(),
        "production_metrics": production.to_dict() if production else None,
        "lineage": candidate.lineage_
        | {
            "candidate_weights_md5": file_digest(paths.candidate / "weights.safetensors"),
            "holdout_md5": file_digest(paths.holdout),
        },
        "params": asdict(params),
        "git_commit": _git_commit(),
        "prefect_run_id": run_id,
    }
    _write_json(paths.decision, record)
    return decision, record


def register(
    record: dict[str, Any],
    params: Params,
    paths: ArtifactPaths,
    schema: Schema,
) -> ModelVersion:
    """Save the candidate, its decision record and a smoke batch in the model store.

    Every candidate is registered, a gate-failed one too (``promote`` refuses it unless
    forced); the smoke batch is the first holdout rows, scored by the smoke test.
    """
    holdout = read_table(paths.holdout, schema)
    return open_registry(params.registry).register(
        paths.candidate, record, holdout.x[: params.registry.smoke_rows]
    )


def promote(
    version: str,
    params: Params,
    params_file: Path,
    *,
    force: bool = False,
    reason: str | None = None,
    actor: str | None = None,
) -> RegistryState:
    """Make ``version`` production once its packaged service passes the smoke test."""
    registry = open_registry(params.registry)
    return registry.promote(
        version,
        lambda chosen: smoke_test(chosen, registry.home, params_file),
        force=force,
        reason=reason,
        actor=actor,
    )


def record_training(
    batch: Table,
    batch_digest: str,
    params: Params,
    paths: ArtifactPaths,
    schema: Schema,
) -> None:
    """Remember what this run trained on: for skip rules and the next label-rate check."""
    if schema.label and batch.y is not None:
        paths.reference_labels.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({schema.label: batch.y}).to_parquet(paths.reference_labels)
    state = json.loads(paths.state.read_text()) if paths.state.exists() else {}
    _write_json(
        paths.state,
        state
        | {
            "batch_digest": batch_digest,
            "trained_at": time.time(),
            "params_digest": params_digest(params),
        },
    )


def params_digest(params: Params) -> str:
    """Hash of every knob, to notice a changed ``params.yaml``."""
    return hashlib.sha256(json.dumps(asdict(params), sort_keys=True).encode()).hexdigest()


def shadow(
    batch: Path, candidate: str | None, params: Params, paths: ArtifactPaths
) -> dict[str, Any]:
    """Score a batch with production and a candidate (default: the newest candidate).

    The comparison is written to ``artifacts/shadow.json``; every review page written
    from then on shows it.
    """
    registry = open_registry(params.registry)
    production = registry.production()
    if production is None:
        raise RegistryError("no production model to shadow yet")
    if candidate is None:
        waiting = [v for v in registry.versions() if v.stage == "candidate"]
        if not waiting:
            raise RegistryError("no candidate version to shadow; name one with --candidate")
        candidate = waiting[0].version
    comparison = {
        "input": str(batch),
        "production": production.version,
        "candidate": candidate,
        "compared_at": datetime.now(UTC).isoformat(timespec="seconds"),
    } | shadow_compare(
        registry.load(production.version),
        registry.load(candidate),
        batch,
        params.serving.chunk_rows,
    )
    _write_json(paths.shadow, comparison)
    return comparison


def _production_version(schema: Schema, params: Params) -> ModelVersion | None:
    """Production, where it scores exactly the schema's features: a model of other
    columns is no baseline for this data, nor a start for fine-tuning."""
    production = open_registry(params.registry).production()
    if production is None:
        return None
    described = json.loads((production.detector_dir / "detector.json").read_text())
    return production if tuple(described["feature_names"]) == schema.features else None


def _production_for(schema: Schema, params: Params) -> AnomalyDetector | None:
    production = _production_version(schema, params)
    return AnomalyDetector.load(production.detector_dir) if production else None


def _pretrain_fingerprint(params: Params, paths: ArtifactPaths) -> str:
    settings = {
        "model": asdict(params.model),
        "pretrain": asdict(params.pretrain),
        "seed": params.runtime.seed,
        "reference": file_digest(paths.reference),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    write_json(path, payload, default=str)


def build_report(params: Params, paths: ArtifactPaths, schema: Schema) -> Path:
    """Write this run's review page (``artifacts/reports/<time>/index.html``)."""
    folder = paths.reports / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    drift_html = None
    if (paths.drift / "drift.html").exists():  # copied: the next run overwrites the original
        drift_html = Path(shutil.copy(paths.drift / "drift.html", folder / "drift.html"))
    data_docs = None
    if paths.validation.exists():
        data_docs = Path(json.loads(paths.validation.read_text())["data_docs"])
    candidate = AnomalyDetector.load(paths.candidate, params.runtime)
    holdout = read_table(paths.holdout, schema)
    assert holdout.y is not None
    inputs = ReportInputs(
        holdout_labels=holdout.y,
        holdout_scores=candidate.decision_function(holdout.x),
        threshold=candidate.threshold_,
        evaluation=json.loads(paths.evaluation.read_text()),
        decision=json.loads(paths.decision.read_text()) if paths.decision.exists() else None,
        drift_summary=_read_json(paths.drift / "summary.json"),
        drift_html=drift_html,
        data_docs=data_docs,
        shadow=_read_json(paths.shadow),
    )
    return write_report(inputs, folder / "index.html")


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None  # type: ignore[no-any-return]
