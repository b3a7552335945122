"""The one list of pipeline stages: ``dvc.yaml`` and the per-stage commands follow from it.

Each :class:`Stage` names what DVC tracks (deps, params, outs, metrics, plots) and how
the stage runs alone on ``data.batch`` (what ``dvc repro`` and ``anomalyflow <stage>``
do). The Prefect flow calls the same stage functions in this order; a test checks that
its task runs follow it. Adding a stage is one entry here, then
``anomalyflow dvc-stages --write``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from anomalyflow.pipeline.context import RunContext

StageRun = Callable[["RunContext", Path], str]  # context, batch -> what to print


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline as DVC versions it and the CLI runs it."""

    name: str  # the dvc.yaml stage and the Prefect task
    command: str  # `anomalyflow <command>`
    summary: str  # the command's help
    run: StageRun
    deps: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    persistent_outs: tuple[str, ...] = ()  # never deleted before the stage runs: user data
    metrics: tuple[str, ...] = ()
    plots: dict[str, dict[str, str]] = field(default_factory=dict)
    reads_batch: bool = False  # takes --data (default: data.batch)
    regenerates_data: bool = False  # writes the built-in data set afresh


def _data(ctx: RunContext, batch: Path) -> str:
    from anomalyflow.data.schema import InputError

    if not batch.exists():
        raise InputError(batch, None, "file not found (data.batch)")
    kind = "generated" if ctx.params.data.source == "synthetic" else "your files, checked"
    return f"Data ({kind}): {ctx.paths.reference}, {batch}, {ctx.paths.holdout}"


def _validate(ctx: RunContext, batch: Path) -> str:
    from anomalyflow.pipeline.validate import validate

    result = validate(ctx, batch)
    return f"{result.evaluated} expectations passed; Data Docs: {result.data_docs}"


def _drift(ctx: RunContext, batch: Path) -> str:
    from anomalyflow.data.loaders import read_table
    from anomalyflow.pipeline.drift import check_drift

    result = check_drift(ctx, read_table(batch, ctx.schema), batch)
    verdict = "drift" if result.drift_detected else "no drift"
    return (
        f"{verdict}: {result.share_drifted:.0%} of features drifted "
        f"{list(result.drifted_columns)}; report: {result.html}"
    )


def _window(ctx: RunContext, batch: Path) -> str:
    """Without the flow's policy every run trains: the batch joins the window at once."""
    from anomalyflow.data.loaders import read_table
    from anomalyflow.pipeline.lineage import file_digest
    from anomalyflow.pipeline.window import append_batch, release_pending

    table = read_table(batch, ctx.schema)
    added = append_batch(ctx.paths, table, file_digest(batch), ctx.schema.id)
    release_pending(ctx.paths)
    kept = f"{added} of its {len(table.x)} rows added" if added else "its rows are there already"
    return f"Window {ctx.paths.window}: {batch}: {kept}"


def _pretrain(ctx: RunContext, batch: Path) -> str:
    from anomalyflow.pipeline.pretrain import pretrain

    _, reused = pretrain(ctx)
    return f"Backbone {'unchanged, reused' if reused else 'pretrained'}: {ctx.paths.backbone}"


def _finetune(ctx: RunContext, batch: Path) -> str:
    from anomalyflow.detector import AnomalyDetector
    from anomalyflow.pipeline.finetune import finetune, save_candidate
    from anomalyflow.pipeline.window import read_window, window_digest

    backbone = AnomalyDetector.load(ctx.paths.backbone, ctx.params.runtime)
    window = read_window(ctx.paths, ctx.schema, ctx.params.window)
    tuned = finetune(ctx, window, ctx.paths.window)
    save_candidate(tuned, backbone, batch, ctx, window_digest(ctx.paths))
    return f"Candidate: {ctx.paths.candidate}"


def _evaluate(ctx: RunContext, batch: Path) -> str:
    from anomalyflow.detector import AnomalyDetector
    from anomalyflow.pipeline.evaluate import evaluate_candidate

    candidate = AnomalyDetector.load(ctx.paths.candidate, ctx.params.runtime)
    report = evaluate_candidate(ctx, candidate).candidate
    return f"AUPRC {report.auprc:.4f}, AUROC {report.auroc:.4f}: {ctx.paths.evaluation}"


def _gate(ctx: RunContext, batch: Path) -> str:
    from anomalyflow.detector import AnomalyDetector
    from anomalyflow.pipeline.evaluate import read_evaluation
    from anomalyflow.pipeline.gate import gate

    candidate = AnomalyDetector.load(ctx.paths.candidate, ctx.params.runtime)
    decision, _ = gate(ctx, read_evaluation(ctx.paths), candidate, run_id=None)
    lines = [
        f"  {'pass' if r.passed else 'FAIL'}  {r.rule}: {r.value} "
        f"(threshold {r.threshold}) {r.note}"
        for r in decision.rules
    ]
    verdict = "approved" if decision.approved else "rejected"
    return "\n".join([*lines, f"Decision: {verdict}; {ctx.paths.decision}"])


DATA_FILES = ("${data.reference}", "${data.batch}", "${data.holdout}")
CHECKED_FILES = ("${data.reference}", "${data.batch}")  # a batch is judged by the reference
BATCH_CHECKS = ("validate", "drift")  # their outputs describe data.batch itself
WINDOW_STAGE = "window"  # grows with every accepted batch, whatever the policy decides

STAGES: tuple[Stage, ...] = (
    Stage(
        "data",
        "generate",
        "Write the built-in data set (history, recent, holdout), or check your files.",
        _data,
        params=("data.source", "synthetic"),
        persistent_outs=DATA_FILES,
        regenerates_data=True,
    ),
    Stage(
        "validate",
        "validate",
        "Validate a batch with the Great Expectations suite (a failing batch is quarantined).",
        _validate,
        deps=CHECKED_FILES,
        params=("data.features", "data.label", "validation"),
        outs=("artifacts/validation.json",),
        reads_batch=True,
    ),
    Stage(
        "drift",
        "drift",
        "Evidently drift of a batch against the reference; HTML and JSON reports.",
        _drift,
        deps=CHECKED_FILES,
        # with task_runner: dask a large batch is compared on seeded samples of this size
        params=(
            "data.features",
            "drift",
            "orchestration.task_runner",
            "orchestration.drift_sample_rows",
            "runtime.seed",
        ),
        outs=(
            "artifacts/drift/drift.html",
            "artifacts/drift/drift.json",
            "artifacts/drift/summary.json",
        ),
        metrics=("artifacts/metrics/drift.json",),
        reads_batch=True,
    ),
    Stage(
        WINDOW_STAGE,
        "window",
        "Add a batch to the training window (every accepted batch, whatever the policy).",
        _window,
        deps=("${data.batch}",),
        # pending/: what arrived since the latest training (a run the policy skipped)
        persistent_outs=("${paths.data_dir}/window", "${paths.data_dir}/pending"),
        reads_batch=True,
    ),
    Stage(
        "pretrain",
        "pretrain",
        "Refresh the backbone if params or the reference data changed (else reuse it).",
        _pretrain,
        deps=("${data.reference}",),
        params=("data.features", "model", "pretrain", "runtime.seed"),
        outs=("artifacts/backbone",),
    ),
    Stage(
        "finetune",
        "finetune",
        "Fine-tune the candidate from the versioned backbone on the training window.",
        _finetune,
        deps=("artifacts/backbone", "${data.batch}", "${paths.data_dir}/window"),
        params=("data.label", "data.timestamp", "finetune", "threshold", "window"),
        outs=("artifacts/candidate",),
    ),
    Stage(
        "evaluate",
        "evaluate",
        "Evaluate the candidate (and production, if any) on the frozen holdout.",
        _evaluate,
        deps=("artifacts/candidate", "${data.holdout}"),
        params=("data.label", "evaluation"),
        outs=("artifacts/evaluation.json", "artifacts/comparison.json"),
        metrics=("artifacts/metrics/holdout.json",),
        plots={
            "artifacts/plots/pr.json": {"x": "recall", "y": "precision"},
            "artifacts/plots/roc.json": {"x": "fpr", "y": "tpr"},
        },
    ),
    Stage(
        "gate",
        "gate",
        "Apply the promotion policy to the evaluated candidate; write the decision record.",
        _gate,
        deps=("artifacts/candidate", "artifacts/evaluation.json", "artifacts/comparison.json"),
        params=("gate",),
        outs=("artifacts/decision.json",),
        metrics=("artifacts/metrics/gate.json",),
    ),
)

DVC_HEADER = """\
# Generated from anomalyflow.pipeline.stages by `anomalyflow dvc-stages --write`; edit
# the stage list there, not this file (a test checks that this file is current).
# One stage per step of the retraining flow (flows/retrain.py); each runs the same
# function the flow's task calls. Every output is cached, so `dvc pull` in a fresh clone
# restores all of them, reports and metrics included. `anomalyflow run` records the lock
# after a flow run (dvc commit) and pushes to the default remote, so `dvc status` is clean.
# Data paths come from params.yaml (data.reference, data.batch, data.holdout): the
# built-in data set is generated there; with data.source: files the `data` stage only
# checks your files, and DVC versions them as its outputs (persist: never deleted; keep
# them out of git).
"""


def dvc_yaml() -> str:
    """The text of ``dvc.yaml``, generated from :data:`STAGES`."""
    stages = {stage.name: _dvc_stage(stage) for stage in STAGES}
    return DVC_HEADER + yaml.safe_dump({"stages": stages}, sort_keys=False, width=100)


def _dvc_stage(stage: Stage) -> dict[str, Any]:
    entry: dict[str, Any] = {"cmd": f"anomalyflow {stage.command}"}
    if stage.deps:
        entry["deps"] = list(stage.deps)
    if stage.params:
        entry["params"] = list(stage.params)
    outs: list[Any] = [{path: {"persist": True}} for path in stage.persistent_outs]
    if outs or stage.outs:
        entry["outs"] = outs + list(stage.outs)
    if stage.metrics:
        entry["metrics"] = list(stage.metrics)
    if stage.plots:
        entry["plots"] = [{path: axes} for path, axes in stage.plots.items()]
    return entry
