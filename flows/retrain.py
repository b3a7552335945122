"""The retraining flow: validate, check drift, pretrain, fine-tune, evaluate, gate, register.

Each task wraps one plain function of :mod:`anomalyflow.steps` and adds only a name,
retries where a retry can help, and Prefect artifacts people see in the UI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from anomalyflow import steps
from anomalyflow.data.loaders import read_table
from anomalyflow.jobs import batch_or_default, prepare_data
from anomalyflow.params import load_params
from anomalyflow.paths import ArtifactPaths


@dataclass
class RunSummary:
    """What the terminal summary and the Prefect artifacts show."""

    outcome: str  # approved | rejected-by-gate | skipped
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
register = task(name="register", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)(
    steps.register
)

KEY_METRICS = ("auprc", "auroc", "precision", "recall", "precision_at_alert_budget")


@flow(name="retrain", log_prints=False)
def retrain(batch: str | None = None, params_file: str = "params.yaml") -> RunSummary:
    """Retrain on an incoming batch (by default ``data.batch``, or the built-in recent data)."""
    params = load_params(params_file)
    paths = ArtifactPaths.from_params(params.paths, params.data)
    clock: dict[str, float] = {}
    started = time.perf_counter()
    schema = prepare_data(params, paths)  # the reference and holdout the batch is judged by
    batch_path = batch_or_default(Path(batch) if batch else None, paths)
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
    registered = str(register(record, paths)) if decision.approved else None
    clock["gate and register"] = _lap(started, clock)
    page = build_report(params, paths, schema)
    clock["report"] = _lap(started, clock)
    failed = [r.rule for r in decision.rules if not r.passed]
    summary = RunSummary(
        outcome="approved" if decision.approved else "rejected-by-gate",
        reason=need.reason if decision.approved else "failed: " + ", ".join(failed),
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
