"""Commands that run the pipeline: the whole retraining flow, or one stage at a time."""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated

import typer

from anomalyflow.cli.common import DEFAULT_PARAMS, Commands, ParamsOption, configured, fail
from anomalyflow.paths import ArtifactPaths
from anomalyflow.pipeline.stages import STAGES, Stage, dvc_yaml
from anomalyflow.scheduling import PREFECT_PORT

app = Commands()
DataOption = Annotated[Path | None, typer.Option(help="Batch; default: data.batch.")]


@app.command()
def run(
    data: Annotated[
        Path | None,
        typer.Option(help="Incoming batch (CSV / Parquet); default: data.batch in params."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Retrain even when nothing changed and the policy would skip.")
    ] = False,
    wait: Annotated[
        bool, typer.Option(help="Wait for a run already working here instead of refusing.")
    ] = False,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """The main job: the Prefect retraining flow on the configured data (or --data)."""
    from flows.launch import already_checked, run_flow

    from anomalyflow.validation.suite import DataValidationError
    from anomalyflow.versioning import record_in_dvc

    params = configured(params_path)
    paths = ArtifactPaths.from_params(params.paths, params.data)
    batch = data or paths.batch
    if not force and batch.is_file() and already_checked(params, paths, batch):
        # The flow's own first check, made before paying for a Prefect API start-up.
        typer.echo(
            "Decision: skipped (nothing changed since the last run: same batch, "
            "params and reference data); no flow run started, --force retrains anyway."
        )
        # A run killed while DVC recorded it left the lock behind: catch the ledger up.
        typer.echo(record_in_dvc(batch, paths, params_path, trained=False))
        return
    try:
        summary = run_flow(params, params_path, batch, typer.echo, force=force, wait=wait)
    except DataValidationError as error:
        fail(f"batch rejected, a copy is in quarantine; nothing downstream changed.\n{error}")
    typer.echo("\n".join(summary.lines()))
    typer.echo(record_in_dvc(batch, paths, params_path, trained=summary.outcome != "skipped"))


def _stage_command(stage: Stage) -> None:
    """Register ``anomalyflow <stage.command>``: the stage alone, as ``dvc repro`` runs it."""

    def command(data: DataOption = None, params_path: ParamsOption = DEFAULT_PARAMS) -> None:
        from anomalyflow.pipeline.context import RunContext
        from anomalyflow.pipeline.state import exclusive_run

        configured(params_path)
        ctx = RunContext.prepare(params_path, regenerate=stage.regenerates_data)
        with exclusive_run(ctx.paths) as own_folder:
            typer.echo(stage.run(ctx.in_run_folder(own_folder), data or ctx.paths.batch))

    if not stage.reads_batch:  # no --data: the stage reads what earlier stages wrote

        def command_without_batch(params_path: ParamsOption = DEFAULT_PARAMS) -> None:
            command(None, params_path)

        app.command(stage.command, help=stage.summary)(command_without_batch)
        return
    app.command(stage.command, help=stage.summary)(command)


def _pretrain_command(stage: Stage) -> None:
    """Register ``anomalyflow pretrain``: the stage, with torch's launcher options."""

    def pretrain(
        nproc: Annotated[
            int | None,
            typer.Option(help="Data-parallel processes on this machine; default: pretrain.nproc."),
        ] = None,
        nnodes: Annotated[
            int, typer.Option(min=1, help="Machines that each run this same command (torchrun's).")
        ] = 1,
        rdzv_endpoint: Annotated[
            str | None,
            typer.Option(help="host:port on one of the machines where they meet (torchrun's)."),
        ] = None,
        params_path: ParamsOption = DEFAULT_PARAMS,
    ) -> None:
        from anomalyflow.params import params_from_dict
        from anomalyflow.pipeline.context import RunContext
        from anomalyflow.pipeline.state import exclusive_run
        from anomalyflow.training.distributed import Rendezvous, TrainedOnOtherMachine

        configured(params_path)
        Rendezvous(nnodes, rdzv_endpoint).export()
        ctx = RunContext.prepare(params_path)
        if nproc is not None:  # checked against the range the params declare
            raw = asdict(ctx.params)
            raw["pretrain"]["nproc"] = nproc
            ctx = replace(ctx, params=params_from_dict(raw, Path("--nproc")))
        with exclusive_run(ctx.paths) as own_folder:
            try:
                typer.echo(stage.run(ctx.in_run_folder(own_folder), ctx.paths.batch))
            except TrainedOnOtherMachine as elsewhere:
                typer.echo(f"This machine's part is done: {elsewhere}")

    app.command(stage.command, help=stage.summary)(pretrain)


for _stage in STAGES:
    (_pretrain_command if _stage.command == "pretrain" else _stage_command)(_stage)


@app.command("rebuild-suite")
def rebuild_suite(params_path: ParamsOption = DEFAULT_PARAMS) -> None:
    """Rebuild gx/expectations from the reference data (drops hand edits)."""
    from anomalyflow.pipeline.context import RunContext
    from anomalyflow.pipeline.validate import build_reference_suite

    configured(params_path)
    typer.echo(f"Suite rebuilt: {build_reference_suite(RunContext.prepare(params_path))}")


@app.command("dvc-stages")
def dvc_stages(
    write: Annotated[bool, typer.Option(help="Write dvc.yaml instead of printing it.")] = False,
) -> None:
    """Print (or --write) the dvc.yaml that follows from the pipeline's stage list."""
    if not write:
        typer.echo(dvc_yaml(), nl=False)
        return
    from anomalyflow.atomic import write_text

    write_text(Path("dvc.yaml"), dvc_yaml())
    typer.echo("wrote dvc.yaml")


@app.command()
def report(
    open_page: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Write the review page of the latest run (evaluation, drift, decision, lineage)."""
    from anomalyflow.pipeline.context import RunContext
    from anomalyflow.pipeline.review import build_review_page
    from anomalyflow.pipeline.state import has_candidate

    params = configured(params_path)
    paths = ArtifactPaths.from_params(params.paths, params.data)
    if not has_candidate(paths):  # before preparing the data, which would write it
        fail(f"no trained candidate in {paths.candidate}; run `anomalyflow run` first")
    ctx = RunContext.prepare(params_path)
    page = build_review_page(ctx)
    typer.echo(f"Report: {page}")
    if open_page:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())


@app.command()
def schedule(
    cron: Annotated[str | None, typer.Option(help="Cron expression, e.g. '0 3 * * *'.")] = None,
    once: Annotated[
        bool, typer.Option(help="Process the incoming folder now, as a scheduled run would.")
    ] = False,
    incoming: Annotated[
        Path | None, typer.Option(help="Folder where new batches arrive; default: data.incoming.")
    ] = None,
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of a local server started here.")
    ] = PREFECT_PORT,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Serve the retraining flow on a cron schedule through a real Prefect server."""
    from flows.launch import serve_schedule

    params = configured(params_path)
    folder = incoming or ArtifactPaths.from_params(params.paths, params.data).incoming
    if folder.exists() and not folder.is_dir():
        fail(f"--incoming: {folder} is not a folder (new batches arrive as files in one)")
    if once and incoming is not None and not folder.exists():  # served: created for arrivals
        fail(f"--incoming: {folder} does not exist (nothing can have arrived in it)")
    if cron is not None:
        _check_cron(cron)
    if once:  # exactly what one scheduled run does, now, then exit
        from flows.schedule import retrain_incoming

        outcomes = retrain_incoming(incoming=str(folder), params_file=str(params_path))
        for name, outcome in outcomes.items():
            typer.echo(f"{name}: {outcome}")
        typer.echo(f"{len(outcomes)} batches taken from {folder}")
        return
    if cron is None:
        fail("give --cron '0 3 * * *' (or --once to process the incoming folder now)")
    serve_schedule(cron, folder, incoming, params_path, port, say=typer.echo)


def _check_cron(cron: str) -> None:
    """Refuse a cron expression Prefect would refuse, before any server starts."""
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError:  # pydantic's ValidationError
        fail(f"--cron: {cron!r} is not a cron expression (minute hour day month weekday)")


@app.command()
def feedback(
    labels: Annotated[Path, typer.Option(help="CSV or Parquet: id,label[,labeled_at].")],
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Attach late labels (chargebacks, confirmations) to rows of the training window."""
    from anomalyflow.pipeline.context import RunContext
    from anomalyflow.pipeline.feedback import apply_feedback
    from anomalyflow.pipeline.state import exclusive_run

    configured(params_path)
    ctx = RunContext.prepare(params_path)
    with exclusive_run(ctx.paths):
        done = apply_feedback(ctx.paths, ctx.schema, labels)
    typer.echo(
        f"{done.received} labels attached to the window ({done.changed} new or changed); "
        "the next run counts them as new labels"
    )


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(help="The paused retraining flow run.")],
    reject: Annotated[bool, typer.Option(help="Reject the candidate instead.")] = False,
    reason: Annotated[str, typer.Option(help="Why; recorded with your name.")] = "",
    by: Annotated[str | None, typer.Option(help="Reviewer (default: your user name).")] = None,
) -> None:
    """Answer a retraining run waiting for approval (``registry.approval: required``)."""
    import getpass
    from uuid import UUID

    from anomalyflow.telemetry import disable_telemetry

    disable_telemetry()
    os.environ.setdefault("PREFECT_API_URL", f"http://127.0.0.1:{PREFECT_PORT}/api")
    from prefect.flow_runs import resume_flow_run

    account = getpass.getuser()  # who ran the command, beside the name they gave
    reviewer = account if by in (None, account) else f"{by} (as {account})"
    answer = {"approve": not reject, "reviewer": reviewer, "reason": reason}
    try:
        resume_flow_run(UUID(run_id), run_input=answer)
    except Exception as error:  # Prefect raises several types: not found, not paused, ...
        fail(f"could not answer flow run {run_id} at {os.environ['PREFECT_API_URL']}: {error}")
    typer.echo(f"{'Rejected' if reject else 'Approved'}; flow run {run_id} resumes.")
