"""Starting flows from the command line: the API they report to, the runner, schedules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from anomalyflow.params import Params
from anomalyflow.paths import ArtifactPaths
from anomalyflow.pipeline.lineage import check_key
from anomalyflow.pipeline.policy import nothing_changed
from anomalyflow.pipeline.state import has_candidate, read_state
from anomalyflow.pipeline.summary import RunSummary
from anomalyflow.scheduling import PREFECT_PORT, PrefectServer, connect_or_start, use_server


def already_checked(params: Params, paths: ArtifactPaths, batch: Path) -> bool:
    """The last run checked this batch with these params and reference: nothing to do.

    The flow makes this check itself; the CLI makes it first to skip a Prefect start-up.
    """
    if not (batch.exists() and paths.reference.exists()):
        return False
    checked = check_key(params, paths.reference, batch, paths.accepted)
    return nothing_changed(read_state(paths), checked, has_candidate(paths))


def run_flow(
    params: Params,
    params_file: Path,
    batch: Path,
    on_server: Callable[[str], object],
    force: bool = False,
    wait: bool = False,
) -> RunSummary:
    """Run the retraining flow on ``batch`` with the task runner params name.

    Dask workers must report to a real Prefect API, and an approval is answered there,
    so for those a local ``prefect server`` is started (or ``PREFECT_API_URL`` used).

    Raises:
        DataValidationError: the batch was rejected and moved to quarantine.
    """
    from flows.retrain import retrain
    from flows.runners import task_runner

    server: PrefectServer | None = None
    if params.orchestration.task_runner == "dask" or params.registry.approval == "required":
        server = connect_or_start(PREFECT_PORT)
        use_server(server)
        on_server(f"Prefect API at {server.api_url} (UI at {server.api_url[:-4]})")
    flow = retrain.with_options(task_runner=task_runner(params.orchestration))
    try:
        summary: RunSummary = flow(
            batch=str(batch), params_file=str(params_file), force=force, wait=wait
        )
    finally:
        if server is not None:
            server.stop()
    return summary


def serve_schedule(
    cron: str,
    folder: Path,
    incoming: Path | None,
    params_file: Path,
    port: int,
    say: Callable[[str], object],
) -> None:
    """Serve ``retrain-incoming`` on ``cron`` through a real Prefect server until stopped."""
    server = connect_or_start(port)
    use_server(server)
    where = "started a local Prefect server" if server.process else "using the Prefect server"
    say(f"{where} at {server.api_url} (UI at {server.api_url.removesuffix('/api')})")
    folder.mkdir(parents=True, exist_ok=True)
    from flows.schedule import retrain_incoming

    say(
        f"Serving 'retrain-incoming' on cron '{cron}', batches from {folder}; "
        "Ctrl-C or SIGTERM stops it."
    )
    try:
        retrain_incoming.serve(
            name="scheduled-retrain",
            cron=cron,
            limit=1,
            parameters={
                # Without --incoming each run reads data.incoming from params afresh.
                "incoming": str(incoming.resolve()) if incoming else None,
                "params_file": str(params_file.resolve()),
            },
        )
    finally:
        server.stop()
