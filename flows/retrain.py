"""The retraining flow: validate, check drift, pretrain, fine-tune, evaluate, gate,
register, then promote: at once (``approval: auto``) or after a person approves it in the
Prefect UI or with ``anomalyflow approve RUN_ID`` (``approval: required``).

Each task wraps one stage function of :mod:`anomalyflow.pipeline` and adds only a name
and Prefect artifacts people see in the UI. The stages run in the order of
:data:`anomalyflow.pipeline.stages.STAGES` (a test checks it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from anomalyflow.data.loaders import Table, read_table, require_file
from anomalyflow.detector import AnomalyDetector
from anomalyflow.errors import quiet_refusal_tracebacks
from anomalyflow.evaluation.gates import GateDecision
from anomalyflow.notify import notify
from anomalyflow.pipeline import drift, evaluate, finetune, gate, pretrain, register, validate
from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.evaluate import Evaluation, read_evaluation
from anomalyflow.pipeline.lineage import check_key, training_digest
from anomalyflow.pipeline.policy import TrainingNeed, nothing_changed, training_need
from anomalyflow.pipeline.review import build_review_page, keep_check_reports
from anomalyflow.pipeline.state import (
    exclusive_run,
    has_candidate,
    read_state,
    record_check,
    record_training,
)
from anomalyflow.pipeline.summary import RunSummary, Stopwatch, summary_metrics
from anomalyflow.pipeline.window import (
    append_batch,
    read_window,
    release_pending,
    window_digest,
)
from anomalyflow.registry.model_version import unfinished_promotion
from anomalyflow.registry.store import open_registry
from anomalyflow.versioning import unversioned_because
from flows.review import review_and_promote
from flows.runners import on_flow_cluster

# On a Dask runner these two send a large batch's partitions to the runner's cluster.
validate_task = task(name="validate", cache_policy=NO_CACHE)(on_flow_cluster(validate.validate))
drift_task = task(name="drift", cache_policy=NO_CACHE)(on_flow_cluster(drift.check_drift))
window_task = task(name="window", cache_policy=NO_CACHE)(append_batch)
pretrain_task = task(name="pretrain", cache_policy=NO_CACHE)(pretrain.pretrain)
finetune_task = task(name="finetune", cache_policy=NO_CACHE)(finetune.finetune)
evaluate_task = task(name="evaluate", cache_policy=NO_CACHE)(evaluate.evaluate_candidate)
gate_task = task(name="gate", cache_policy=NO_CACHE)(gate.gate)
register_task = task(name="register", cache_policy=NO_CACHE)(register.register)
report_task = task(name="report", cache_policy=NO_CACHE)(build_review_page)

NOTIFIED_OUTCOMES = ("promoted", "rejected-by-gate", "registered")  # decisions people act on
PREFECT_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
NOTHING_CHANGED = "nothing changed since the last run: same batch, params and reference data"


@flow(name="retrain", log_prints=False)
def retrain(
    batch: str | None = None,
    params_file: str = "params.yaml",
    force: bool = False,
    wait: bool = False,
) -> RunSummary:
    """Retrain on an incoming batch (by default ``data.batch``), one run at a time.

    ``force`` trains even when nothing changed or the policy would skip (``run --force``);
    ``wait`` waits for a run already working in the project instead of refusing.
    """
    quiet_refusal_tracebacks(*PREFECT_RUN_LOGGERS)
    clock = Stopwatch()
    with clock.lap("prepare"):
        ctx = RunContext.prepare(params_file)  # the reference and holdout the batch is judged by
    batch_path = Path(batch) if batch else ctx.paths.batch
    if unversioned_because(batch_path, ctx.paths, ctx.params_file):
        ctx = ctx.with_own_checks(batch_path)
    with exclusive_run(ctx.paths, wait=wait) as own_folder:
        try:
            summary = _retrain(ctx.in_run_folder(own_folder), batch_path, clock, force)
        except Exception as error:
            notify(ctx.params.notify, "run-failed", batch=batch_path, error=str(error))
            raise
    return _published(_announced(ctx, summary))


def _announced(ctx: RunContext, summary: RunSummary) -> RunSummary:
    """Notify a decision people act on; note a promotion an earlier run left unfinished."""
    if summary.outcome in NOTIFIED_OUTCOMES:
        page = summary.reports.get("review page")
        details = {"version": summary.registered, "reason": summary.reason, "review_page": page}
        notify(ctx.params.notify, summary.outcome, **details)
    if ctx.params.registry.approval != "auto" or summary.outcome == "promoted":
        return summary  # a candidate waiting for a reviewer is no accident
    registry = open_registry(ctx.params.registry, ctx.schema.features)
    unfinished = unfinished_promotion(registry.versions())
    if unfinished:
        summary.notes.append(
            f"version {unfinished} passed its gate but its promotion never finished: "
            f"`anomalyflow promote {unfinished}` finishes it"
        )
    return summary


def _retrain(ctx: RunContext, batch_path: Path, clock: Stopwatch, force: bool) -> RunSummary:
    """Validate, check drift, add the batch to the window; train when the policy says so."""
    require_file(batch_path)
    checked = check_key(ctx.params, ctx.paths.reference, batch_path, ctx.paths.accepted)
    if not force and nothing_changed(read_state(ctx.paths), checked, has_candidate(ctx.paths)):
        return RunSummary("skipped", NOTHING_CHANGED, seconds=clock.seconds)
    with clock.lap("validate"):
        validate_task(ctx, batch_path)
    table = read_table(batch_path, ctx.schema)
    with clock.lap("drift"):
        drifted = drift_task(ctx, table, batch_path)
    if drifted.drift_detected:
        columns = list(drifted.drifted_columns)
        notify(
            ctx.params.notify,
            "drift",
            batch=batch_path,
            share=drifted.share_drifted,
            columns=columns,
        )
    with clock.lap("window"):  # whatever the policy decides: nothing is lost
        window_task(ctx.paths, table, checked[0], ctx.schema.id)
    checked = check_key(ctx.params, ctx.paths.reference, batch_path, ctx.paths.accepted)
    need = (
        TrainingNeed(True, "forced (--force)")
        if force
        else training_need(
            read_state(ctx.paths),
            has_candidate=has_candidate(ctx.paths),
            training_digest=training_digest(ctx.params),
            window_digest=window_digest(ctx.paths),
            drift=drifted,
            rules=ctx.params.drift,
            now=time.time(),
        )
    )
    if not need.train and _saved_candidate_unregistered(ctx):
        need = TrainingNeed(True, "the last run stopped before its candidate was registered")
    if not need.train and has_candidate(ctx.paths) and gate.rules_changed(ctx):
        rejudged = _rejudged(ctx, clock)
        record_check(ctx.paths, checked)  # once judged: a crash before would judge again
        return rejudged
    if not need.train:
        record_check(ctx.paths, checked)
        kept = keep_check_reports(ctx)  # in a folder of this run's own
        return RunSummary("skipped", need.reason, reports=kept, seconds=clock.seconds)
    return _train_and_decide(ctx, batch_path, need, clock)


def _saved_candidate_unregistered(ctx: RunContext) -> bool:
    """Every trained candidate is registered or equals a version that is; one that is
    neither was left by a run killed after its gate, and training again (the same window,
    the same weights) finishes what it began, instead of a silent 'nothing changed'."""
    return has_candidate(ctx.paths) and register.registered_twin(ctx, ctx.paths.candidate) is None


def _train_and_decide(
    ctx: RunContext,
    batch_path: Path,
    need: TrainingNeed,
    clock: Stopwatch,
) -> RunSummary:
    """Take in what arrived since the latest training; pretrain (or reuse), fine-tune on
    the window, evaluate, gate, register, review page, promote.

    The training is recorded once the gate has decided, before registration, so a
    failed promotion does not train on the same window again; a registration cut short
    leaves the batch unchecked, and the next run trains again to register its candidate.
    """
    release_pending(ctx.paths)
    checked = check_key(ctx.params, ctx.paths.reference, batch_path, ctx.paths.accepted)
    window = read_window(ctx.paths, ctx.schema, ctx.params.window)
    with clock.lap("pretrain") as lap:
        backbone, reused = pretrain_task(ctx)
        lap.name = "pretrain (reused)" if reused else "pretrain"
    with clock.lap("fine-tune"):
        candidate = _finetune_best(ctx, window, backbone, batch_path)
    trained = (window_digest(ctx.paths), training_digest(ctx.params))
    twin = register.registered_twin(ctx, ctx.paths.run_candidate)
    if twin is not None:  # the same weights as a registered version: nothing new to judge
        record_training(ctx.paths, window, ctx.schema, *trained)
        record_check(ctx.paths, checked)
        reason = f"{need.reason}; the new weights equal version {twin}'s; nothing registered"
        return RunSummary("unchanged", reason, registered=None, seconds=clock.seconds)
    with clock.lap("evaluate"):
        evaluation = evaluate_task(ctx, candidate)
    with clock.lap("gate and register"):
        decision, record = gate_task(ctx, evaluation, candidate, str(flow_run.get_id()))
        record_training(ctx.paths, window, ctx.schema, *trained)
        registered = register_task(ctx, record).version
        record_check(ctx.paths, checked)  # checked in full once registered, not before
    return _decided(ctx, (decision, record, evaluation), registered, need.reason, clock)


def _rejudged(ctx: RunContext, clock: Stopwatch) -> RunSummary:
    """Judge the saved candidate again by the gate's changed rules: no training, no new
    version; the registry records the new verdict, and a pass may promote it."""
    version = register.registered_twin(ctx, ctx.paths.candidate)
    assert version is not None  # an unregistered candidate is trained again instead
    with clock.lap("gate"):
        candidate = AnomalyDetector.load(ctx.paths.candidate, ctx.params.runtime)
        evaluation = read_evaluation(ctx.paths)
        decision, record = gate_task(ctx, evaluation, candidate, str(flow_run.get_id()))
        registry = open_registry(ctx.params.registry, ctx.schema.features)
        why = "the gate's rules changed: the candidate judged again, not retrained"
        failed = [r.rule for r in decision.rules if not r.passed]
        recorded = f"{why}; failed: {', '.join(failed)}" if failed else why
        registry.record_review(version, decision.approved, recorded, None, by_gate=True)
    stage = registry.state().stage_of(version)
    if stage != "candidate":  # production already, or replaced by a person's rollback
        verdict = "passes" if decision.approved else "fails"
        restore = f": `promote {version}` restores it" if stage == "archived" else ""
        reason = f"{why}; {version} {verdict} (it stays {stage}{restore})"
        return RunSummary("rejudged", reason, seconds=clock.seconds)
    return _decided(ctx, (decision, record, evaluation), version, why, clock)


def _decided(
    ctx: RunContext,
    judged: tuple[GateDecision, dict[str, Any], Evaluation],
    registered: str,
    why: str,
    clock: Stopwatch,
) -> RunSummary:
    """The review page, then promotion of a candidate that passed the gate."""
    decision, record, evaluation = judged
    with clock.lap("report"):
        page = report_task(ctx, registered)  # before any approval: decided with it open
    with clock.lap("promote"):
        failed = [r.rule for r in decision.rules if not r.passed]
        outcome, reason = "rejected-by-gate", "failed: " + ", ".join(failed)
        if decision.approved:
            outcome, reason = review_and_promote(ctx, registered, why, page)
    return RunSummary(
        outcome=outcome,
        reason=reason,
        metrics=summary_metrics(evaluation.candidate) or {},
        production_metrics=summary_metrics(evaluation.production),
        registered=registered,
        notes=record["threshold_implication"]["lines"],
        reports={  # this run's own copies: a later run never overwrites them
            "review page": str(page),
            "validation": str(page.parent / "validation.html"),
            "drift": str(page.parent / "drift.html"),
            "decision": str(ctx.paths.decision),
        },
        seconds=clock.seconds,
    )


def _finetune_best(
    ctx: RunContext, window: Table, backbone: AnomalyDetector, batch_path: Path
) -> AnomalyDetector:
    """Fine-tune one seed, or several side by side on the task runner; save the best."""
    seeds = [ctx.params.runtime.seed + i for i in range(ctx.params.orchestration.finetune_seeds)]
    source = ctx.paths.window
    if len(seeds) == 1:
        tuned = [finetune_task(ctx, window, source)]
    else:  # side by side on the flow's task runner (threads, or Dask workers)
        futures = [finetune_task.submit(ctx, window, source, seed) for seed in seeds]
        tuned = [future.result() for future in futures]
    best = max(tuned, key=lambda t: t.selection_auprc)
    return finetune.save_candidate(best, backbone, batch_path, ctx, window_digest(ctx.paths))


def _published(summary: RunSummary) -> RunSummary:
    """A markdown summary and a metrics table in the Prefect UI."""
    lines = [f"# Retraining: {summary.outcome}", "", summary.reason, ""]
    lines += [
        f"- [{name}]({Path(path).resolve().as_uri()})" for name, path in summary.reports.items()
    ]
    create_markdown_artifact(key="retrain-summary", markdown="\n".join(lines))
    if summary.metrics:
        production = summary.production_metrics or {}
        rows = [
            {"metric": k, "candidate": round(v, 4), "production": _rounded(production.get(k))}
            for k, v in summary.metrics.items()
        ]
        create_table_artifact(key="retrain-metrics", table=rows)
    return summary


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
