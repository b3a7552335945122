"""Scheduled retraining: every new batch in the incoming folder goes through the flow.

Each batch ends either in ``processed/`` (validated, whatever the gate decided) or in
quarantine (with its validation report), never both and never left behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import flow, get_run_logger

from anomalyflow.data.schema import InputError
from anomalyflow.pipeline.context import RunContext
from anomalyflow.validation.suite import DataValidationError
from anomalyflow.versioning import LedgerError, record_in_dvc
from flows.retrain import retrain

BATCH_PATTERNS = ("*.parquet", "*.csv")


@flow(name="retrain-incoming")
def retrain_incoming(
    incoming: str | None = None, processed: str | None = None, params_file: str = "params.yaml"
) -> dict[str, str]:
    """Run the retraining flow on each waiting batch, oldest name first.

    ``incoming`` defaults to ``data.incoming``, ``processed`` to its sibling folder.
    """
    # A missing reference or holdout is the setup's fault, not the batches': fail the
    # run here rather than quarantine every good batch.
    ctx = RunContext.prepare(params_file)
    paths = ctx.paths
    inbox = Path(incoming) if incoming else paths.incoming
    done = Path(processed) if processed else inbox.parent / "processed"
    outcomes: dict[str, str] = {}
    batches = sorted(p for pattern in BATCH_PATTERNS for p in inbox.glob(pattern))
    for batch in batches:
        outcomes[batch.name], reason = _take(batch, params_file, paths.quarantine, done)
        # On the scheduler's console too, not only as an artifact in the Prefect UI.
        get_run_logger().info("%s: %s (%s)", batch.name, outcomes[batch.name], reason)
        if outcomes[batch.name] != "quarantined":
            trained = outcomes[batch.name] != "skipped"
            get_run_logger().info("%s", _recorded(batch, ctx, trained))
    return outcomes


def _recorded(batch: Path, ctx: RunContext, trained: bool) -> str:
    """Version what the run changed (window, backbone, candidate), so ``dvc status`` stays
    clean; a failure to record is said, and the batch stays processed."""
    try:
        return record_in_dvc(batch, ctx.paths, ctx.params_file, trained)
    except LedgerError as error:
        return str(error)


def _take(batch: Path, params_file: str, quarantine: Path, done: Path) -> tuple[str, str]:
    """Run the flow on one batch; leave it in ``done`` or quarantine. Outcome and reason."""
    try:
        summary = retrain(batch=str(batch), params_file=params_file)
    except DataValidationError as error:  # its copy and report are in quarantine
        batch.unlink()
        return "quarantined", str(error).splitlines()[0]
    except InputError as error:  # unreadable: it never reached quarantine
        quarantine.mkdir(parents=True, exist_ok=True)
        shutil.move(str(batch), quarantine / batch.name)
        return "quarantined", str(error).splitlines()[0]
    done.mkdir(parents=True, exist_ok=True)
    shutil.move(str(batch), done / batch.name)
    return summary.outcome, summary.reason
