"""The gate stage: the promotion policy applied, and the decision record written."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from anomalyflow.atomic import write_json
from anomalyflow.detector import AnomalyDetector
from anomalyflow.evaluation.gates import GateDecision, apply_policy
from anomalyflow.evaluation.threshold import explain_threshold
from anomalyflow.integrity import read_json_object
from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.evaluate import Evaluation
from anomalyflow.pipeline.lineage import file_digest, git_commit
from anomalyflow.pipeline.production import no_baseline_note
from anomalyflow.registry.store import open_registry


def gate(
    ctx: RunContext, evaluation: Evaluation, candidate: AnomalyDetector, run_id: str | None
) -> tuple[GateDecision, dict[str, Any]]:
    """Apply the promotion policy and write the decision record (``artifacts/decision.json``).

    The record holds every rule with its value and verdict, and what produced the
    candidate (hashes, params, commit, Prefect run), so a decision can be audited later.
    """
    paths = ctx.paths
    # Only the production of the candidate's own model name is a baseline.
    registry = open_registry(ctx.params.registry, ctx.schema.features)
    no_baseline = no_baseline_note(registry) if evaluation.comparison is None else ""
    decision = apply_policy(
        evaluation.candidate, evaluation.comparison, ctx.params.gate, no_baseline
    )
    production = evaluation.production
    record = decision.to_dict() | {
        "model_name": registry.name,
        "decided_at": datetime.now(UTC).isoformat(),
        "candidate_metrics": evaluation.candidate.to_dict(),
        "production_metrics": production.to_dict() if production else None,
        "lineage": candidate.lineage_
        | {
            "candidate_weights_md5": file_digest(paths.candidate / "weights.safetensors"),
            "holdout_md5": file_digest(paths.holdout),
        },
        "threshold_implication": _threshold_implication(ctx, evaluation),
        "params": asdict(ctx.params),
        "git_commit": git_commit(),
        "prefect_run_id": run_id,
    }
    write_json(paths.decision, record, default=str)
    verdicts = {rule.rule: rule.value for rule in decision.rules}
    write_json(paths.metrics / "gate.json", {"approved": decision.approved} | verdicts)
    return decision, record


def rules_changed(ctx: RunContext) -> bool:
    """The gate's rules differ from those the saved candidate was judged by: a change
    people make to judge the same candidate again, not to retrain it."""
    if not ctx.paths.decision.exists():
        return False
    judged_by = read_json_object(ctx.paths.decision).get("params", {}).get("gate")
    return judged_by is not None and judged_by != asdict(ctx.params.gate)


def _threshold_implication(ctx: RunContext, evaluation: Evaluation) -> dict[str, Any]:
    """What the threshold rule means on this holdout: alerts, and the recall it allows."""
    report = evaluation.candidate
    implication = explain_threshold(ctx.params.threshold, report.positives / report.rows)
    return asdict(implication) | {
        "caps_recall": implication.caps_recall,
        "lines": implication.lines(),
    }
