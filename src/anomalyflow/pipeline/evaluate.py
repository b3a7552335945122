"""The evaluate stage: candidate and production on the frozen, fully labeled holdout."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from anomalyflow.atomic import write_json
from anomalyflow.data.loaders import read_table
from anomalyflow.detector import AnomalyDetector
from anomalyflow.evaluation.curves import write_curves
from anomalyflow.evaluation.gates import PairedComparison, compare_on_holdout
from anomalyflow.evaluation.metrics import EvaluationReport, evaluate, write_evaluation
from anomalyflow.integrity import read_json_object
from anomalyflow.paths import ArtifactPaths
from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.production import production_version
from anomalyflow.registry.store import open_registry

# The holdout metrics DVC shows and compares: a table that fits a terminal.
HOLDOUT_METRICS = ("auprc", "auroc", "precision", "recall", "f1", "precision_at_alert_budget")


@dataclass(frozen=True)
class Evaluation:
    """The candidate's metrics, and production's beside them where there is a production."""

    candidate: EvaluationReport
    production: EvaluationReport | None
    comparison: PairedComparison | None
    production_version: str | None = None  # the version compared with, named on the page


def evaluate_candidate(ctx: RunContext, candidate: AnomalyDetector) -> Evaluation:
    """Score the candidate and, when one exists, production on the holdout; write both."""
    params, paths = ctx.params, ctx.paths
    holdout = read_table(paths.holdout, ctx.schema)
    assert holdout.y is not None
    seed = params.runtime.seed
    scores = candidate.decision_function(holdout.x)
    report = evaluate(holdout.y, scores, candidate.threshold_, params.evaluation, seed=seed)
    write_evaluation(report, paths.evaluation)
    write_json(paths.metrics / "holdout.json", {k: getattr(report, k) for k in HOLDOUT_METRICS})
    write_curves(holdout.y, scores, paths.plots)
    production_entry = production_version(ctx.schema, params.registry)
    if production_entry is None:
        return _saved(Evaluation(report, None, None), paths)
    registry = open_registry(params.registry, ctx.schema.features)
    production = registry.load(production_entry.version)  # verified
    baseline = production.decision_function(holdout.x)
    production_report = evaluate(
        holdout.y, baseline, production.threshold_, params.evaluation, seed=seed
    )
    comparison = compare_on_holdout(
        holdout.y,
        scores,
        baseline,
        params.gate.bootstrap_samples,
        params.gate.confidence_level,
        seed,
    )
    evaluation = Evaluation(report, production_report, comparison, production_entry.version)
    return _saved(evaluation, paths)


def read_evaluation(paths: ArtifactPaths) -> Evaluation:
    """What :func:`evaluate_candidate` wrote, for a gate run on its own (a DVC stage)."""
    report = EvaluationReport(**read_json_object(paths.evaluation))
    saved = read_json_object(paths.comparison)
    production = EvaluationReport(**saved["production"]) if saved["production"] else None
    comparison = PairedComparison(**saved["comparison"]) if saved["comparison"] else None
    return Evaluation(report, production, comparison, saved.get("production_version"))


def _saved(evaluation: Evaluation, paths: ArtifactPaths) -> Evaluation:
    production, comparison = evaluation.production, evaluation.comparison
    payload = {
        "production_version": evaluation.production_version,
        "production": production.to_dict() if production else None,
        "comparison": asdict(comparison) if comparison else None,
    }
    write_json(paths.comparison, payload, default=str)
    return evaluation
