"""The retraining flow: validate, check drift, pretrain, fine-tune, evaluate, gate,
register, then promote: at once (``approval: auto``) or after a person approves it in the
Prefect UI or with ``anomalyflow approve RUN_ID`` (``approval: required``).

Each task wraps one plain function of :mod:`anomalyflow.steps` and adds only a name,
retries where a retry can help, and Prefect artifacts people see in the UI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run

from anomalyflow import steps
from anomalyflow.data.loaders import read_table
from anomalyflow.jobs import prepare_data
from anomalyflow.params import Params, load_params
from anomalyflow.paths import ArtifactPaths
from anomalyflow.registry.store import open_registry
from anomalyflow.serving.server import SmokeTestFailed


@dataclass
class RunSummary:
    """What the terminal summary and the Prefect artifacts show."""

    outcome: str  # promoted | registered | rejected-by-gate | skipped
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)
    production_metrics: dict[str, float] | None = None
    registered: str | None = None
    reports: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


validate = task(name="validate", cache_policy=NO_CACHE)(steps.validate)
check_drift = task(name="check-drift", cache_policy=NO_CACHE)(steps.check_drift)
pretrain = task(name="pretrain", cache_policy=NO_CACHE)(steps.pretrain)
finetune = task(name="fine-tune", cache_policy=NO_CACHE)(steps.finetune)
evaluate = task(name="evaluate", cache_policy=NO_CACHE)(steps.evaluate_candidate)
gate = task(name="gate", cache_policy=NO_CACHE)(steps.gate)
build_report = task(name="report", cache_policy=NO_CACHE)(steps.build_report)
register = task(name="register", cache_policy=NO_CACHE)(steps.register)
promote = task(name="promote", cache_policy=NO_CACHE)(steps.promote)

KEY_METRICS = ("auprc", "auroc", "precision", "recall", "precision_at_alert_budget")
REVIEW_POLL_SECONDS = 2


class Review(RunInput):
    """A person's answer to a candidate waiting for approval."""

    approve: bool
    reviewer: str
    reason: str = ""


@flow(name="retrain", log_prints=False)
def retrain(batch: str | None = None, params_file: str = "params.yaml") -> RunSummary:
    """Retrain on an incoming batch (by default ``data.batch``)."""
    params = load_params(params_file)
    paths = ArtifactPaths.from_params(params.paths, params.data)
    clock: dict[str, float] = {}
    started = time.perf_counter()
    schema = prepare_data(params, paths)  # the reference and holdout the batch is judged by
    batch_path = Path(batch) if batch else paths.batch
    clock["prepare"] = _lap(started)

    batch_digest = steps.file_digest(batch_path)
    if steps.nothing_changed(batch_digest, params, paths):
        summary = RunSummary(
            "skipped",
            "nothing changed since the last run: same batch, params and reference data",
            seconds=clock,
        )
        _publish(summary)
        return summary
    validation = validate(batch_path, params, paths, schema)
    clock["validate"] = _lap(started, clock)
    table = read_table(batch_path, schema)
    drift = check_drift(table, params, paths, schema)
    clock["drift"] = _lap(started, clock)
    reports = {"data_docs": str(validation.data_docs), "drift": str(drift.html)}
    need = steps.training_need(drift, batch_digest, params, paths)
    if not need.train:
        steps.record_check(batch_digest, params, paths)
        summary = RunSummary("skipped", need.reason, reports=reports, seconds=clock)
        _publish(summary)
        return summary

    backbone, reused = pretrain(params, paths, schema)
    clock["pretrain (reused)" if reused else "pretrain"] = _lap(started, clock)
    seeds = [params.runtime.seed + i for i in range(params.orchestration.finetune_seeds)]
    if len(seeds) == 1:
        tuned = [finetune(table, batch_path, params, paths, schema)]
    else:  # side by side on the flow's task runner (threads, or Dask workers)
        tuned = [
            f.result()
            for f in [
                finetune.submit(table, batch_path, params, paths, schema, seed) for seed in seeds
            ]
        ]
    best = max(tuned, key=lambda t: t.calibration_auprc)
    candidate = steps.save_candidate(best, backbone, batch_path, paths)
    clock["fine-tune"] = _lap(started, clock)
    report, production, comparison = evaluate(candidate, params, paths, schema)
    clock["evaluate"] = _lap(started, clock)
    decision, record = gate(
        report, production, comparison, candidate, params, paths, str(flow_run.get_id())
    )
    steps.record_training(table, batch_digest, params, paths, schema)
    steps.record_check(batch_digest, params, paths)
    registered = register(record, params, paths, schema).version
    outcome, reason = (
        "rejected-by-gate",
        "failed: " + ", ".join(r.rule for r in decision.rules if not r.passed),
    )
    if decision.approved:
        outcome, reason = _review_and_promote(registered, params, Path(params_file), need.reason)
    clock["gate, register and promote"] = _lap(started, clock)
    page = build_report(params, paths, schema)
    clock["report"] = _lap(started, clock)
    summary = RunSummary(
        outcome=outcome,
        reason=reason,
        metrics={k: float(getattr(report, k)) for k in KEY_METRICS},
        production_metrics=None
        if production is None
        else {k: float(getattr(production, k)) for k in KEY_METRICS},
        registered=registered,
        reports={"review page": str(page)} | reports | {"decision": str(paths.decision)},
        seconds=clock,
    )
    _publish(summary)
    return summary


def _review_and_promote(
    version: str, params: Params, params_file: Path, why_trained: str
) -> tuple[str, str]:
    """Promote a candidate that passed the gate, after a person's approval if required."""
    actor = "policy: approval auto"
    reason: str | None = why_trained
    if params.registry.approval == "required":
        review = _wait_for_review(version, params)
        open_registry(params.registry).record_review(
            version, review.approve, review.reason, review.reviewer
        )
        if not review.approve:
            return "registered", f"rejected by {review.reviewer}: {review.reason}"
        actor, reason = review.reviewer, review.reason
    try:
        promote(version, params, params_file, reason=reason, actor=actor)
    except SmokeTestFailed as error:
        return "registered", f"not promoted, the serving smoke test failed: {error}"
    return "promoted", f"{why_trained}; approved by {actor}"


def _wait_for_review(version: str, params: Params) -> Review:
    """Pause until someone answers in the Prefect UI or with ``anomalyflow approve``."""
    run_id = flow_run.get_id()
    get_run_logger().warning(
        "Candidate %s passed the gate and waits for approval: "
        "anomalyflow approve %s [--reject] --reason '...' (or the Prefect UI)",
        version,
        run_id,
    )
    try:
        review: Review = pause_flow_run(
            wait_for_input=Review,
            timeout=int(params.registry.approval_timeout_hours * 3600),
            poll_interval=REVIEW_POLL_SECONDS,
            key=f"review-{version}",
        )
    except FlowPauseTimeout:
        return Review(approve=False, reviewer="timeout", reason="nobody answered in time")
    return review


def _lap(started: float, clock: dict[str, float] | None = None) -> float:
    return time.perf_counter() - started - sum((clock or {}).values())


def _publish(summary: RunSummary) -> None:
    """A markdown summary and a metrics table in the Prefect UI."""
    lines = [f"# Retraining: {summary.outcome}", "", summary.reason, ""]
    lines += [f"- {name}: `{path}`" for name, path in summary.reports.items()]
    create_markdown_artifact(key="retrain-summary", markdown="\n".join(lines))
    if summary.metrics:
        create_table_artifact(
            key="retrain-metrics",
            table=[
                {
                    "metric": k,
                    "candidate": round(v, 4),
                    "production": None
                    if summary.production_metrics is None
                    else round(summary.production_metrics[k], 4),
                }
                for k, v in summary.metrics.items()
            ],
        )
