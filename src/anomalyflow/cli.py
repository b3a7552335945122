"""The ``anomalyflow`` command: one subcommand per job.

Bad input ends with a one-line error naming the file, column and rule, and exit code 2.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from anomalyflow.data.schema import InputError, Schema
from anomalyflow.params import Params, ParamsError, load_params
from anomalyflow.paths import ArtifactPaths
from anomalyflow.telemetry import disable_telemetry

if TYPE_CHECKING:
    from anomalyflow.registry.store import Registry

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Pretrain on unlabeled data, fine-tune with few labels, detect anomalies.",
)

ParamsOption = Annotated[Path, typer.Option("--params", help="Path to params.yaml.")]
VersionOption = Annotated[
    str | None, typer.Option("--model", help="Registered version (default: production).")
]
PREFECT_PORT = 4200  # of the local Prefect server started where a real API is needed


def _load(path: Path) -> Params:
    try:
        return load_params(path)
    except ParamsError as error:
        _fail(str(error))


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _stage(params_path: Path) -> tuple[Params, ArtifactPaths, Schema]:
    """Params, paths and schema for a pipeline step run on its own (as a DVC stage does)."""
    from anomalyflow.jobs import prepare_data

    params = _load(params_path)
    _configure(params)
    paths = ArtifactPaths.from_params(params.paths, params.data)
    try:
        return params, paths, prepare_data(params, paths)
    except InputError as error:
        _fail(str(error))


def _configure(params: Params) -> None:
    import torch

    disable_telemetry()
    # The ephemeral Prefect API migrates a fresh database for 12-15 s on 2 cores; on a
    # busy machine Prefect's 20 s start-up limit is too tight.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    if params.runtime.num_threads > 0:
        torch.set_num_threads(params.runtime.num_threads)


@app.command()
def run(
    data: Annotated[
        Path | None,
        typer.Option(help="Incoming batch (CSV / Parquet); default: data.batch in params."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Start a flow run even when nothing changed since the last one.")
    ] = False,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """The main job: the Prefect retraining flow on the configured data (or --data)."""
    params = _load(params_path)
    _configure(params)
    from anomalyflow import steps

    paths = ArtifactPaths.from_params(params.paths, params.data)
    batch = data or paths.batch
    if (
        not force
        and batch.exists()
        and paths.reference.exists()
        and steps.nothing_changed(steps.file_digest(batch), params, paths)
    ):
        # The flow's own first check, made before paying for a Prefect API start-up.
        typer.echo(
            "Decision: skipped (nothing changed since the last run: same batch, "
            "params and reference data); no flow run started, --force starts one."
        )
        return
    from flows.retrain import retrain
    from flows.runners import task_runner

    from anomalyflow.registry.store import RegistryError
    from anomalyflow.validation.suite import DataValidationError

    server = None
    # Dask workers must report to a real Prefect API, and an approval is answered there.
    if params.orchestration.task_runner == "dask" or params.registry.approval == "required":
        from anomalyflow.scheduling import connect_or_start, use_server

        server = connect_or_start(PREFECT_PORT)
        use_server(server)
        typer.echo(f"Prefect API at {server.api_url} (UI at {server.api_url[:-4]})")
    flow = retrain.with_options(task_runner=task_runner(params.orchestration))
    try:
        summary = flow(batch=str(batch), params_file=str(params_path))
    except DataValidationError as error:
        _fail(f"batch rejected, moved to quarantine; nothing downstream changed.\n{error}")
    except RegistryError as error:
        _fail(str(error))
    except InputError as error:
        _fail(str(error))
    finally:
        if server is not None:
            server.stop()
    typer.echo(f"\nDecision: {summary.outcome} ({summary.reason})")
    if summary.metrics:
        typer.echo(f"  {'metric':<28}{'candidate':>10}{'production':>12}")
        for key, value in summary.metrics.items():
            production = (summary.production_metrics or {}).get(key)
            shown = f"{production:.4f}" if production is not None else "none yet"
            typer.echo(f"  {key:<28}{value:>10.4f}{shown:>12}")
    if summary.registered:
        typer.echo(
            f"Registered version {summary.registered} in the BentoML model store "
            "(`anomalyflow models` lists every version)"
        )
    typer.echo("Time per step: " + ", ".join(f"{k} {v:.1f} s" for k, v in summary.seconds.items()))
    for name, path in summary.reports.items():
        typer.echo(f"Report ({name}): {path}")
    if batch.resolve() != paths.batch.resolve():
        # dvc.yaml's stages read data.batch; recording them would credit this run's
        # artifacts to a batch it never used.
        typer.echo(
            f"DVC: not recorded, dvc.yaml versions data.batch ({paths.batch}), not {batch}; "
            "set data.batch to this file to version its runs."
        )
        return
    from anomalyflow.versioning import LedgerError, record_run

    try:
        ledger = record_run()
    except LedgerError as error:
        _fail(str(error))
    if ledger is None:
        typer.echo("DVC: not a DVC repository here; nothing recorded.")
    else:
        typer.echo(f"DVC: recorded {ledger.lock}, pushed {ledger.pushed} files to the remote.")


@app.command()
def pretrain(params_path: ParamsOption = Path("params.yaml")) -> None:
    """The pretraining flow alone: refresh the backbone if params or reference changed."""
    params = _load(params_path)
    _configure(params)
    from flows.pretrain import pretrain_flow

    try:
        reused = pretrain_flow(params_file=str(params_path))
    except InputError as error:
        _fail(str(error))
    state = "unchanged, reused" if reused else "pretrained"
    typer.echo(f"Backbone {state}: {params.paths.artifacts_dir}/backbone")


@app.command()
def validate(
    data: Annotated[Path | None, typer.Option(help="Batch; default: data.batch.")] = None,
    rebuild_suite: Annotated[
        bool,
        typer.Option(help="Rebuild gx/expectations from the reference data (drops hand edits)."),
    ] = False,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Validate a batch with the Great Expectations suite (a failing batch is quarantined)."""
    from anomalyflow import steps
    from anomalyflow.validation.suite import DataValidationError

    params, paths, schema = _stage(params_path)
    batch = data or paths.batch
    try:
        result = steps.validate(batch, params, paths, schema, rebuild_suite=rebuild_suite)
    except (DataValidationError, InputError) as error:
        _fail(str(error))
    typer.echo(f"{result.evaluated} expectations passed; Data Docs: {result.data_docs}")


@app.command()
def drift(
    data: Annotated[Path | None, typer.Option(help="Batch; default: data.batch.")] = None,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Evidently drift of a batch against the reference; HTML and JSON reports."""
    from anomalyflow import steps
    from anomalyflow.data.loaders import read_table

    params, paths, schema = _stage(params_path)
    batch = data or paths.batch
    try:
        result = steps.check_drift(read_table(batch, schema), params, paths, schema)
    except InputError as error:
        _fail(str(error))
    verdict = "drift" if result.drift_detected else "no drift"
    typer.echo(
        f"{verdict}: {result.share_drifted:.0%} of features drifted "
        f"{list(result.drifted_columns)}; report: {result.html}"
    )


@app.command()
def finetune(params_path: ParamsOption = Path("params.yaml")) -> None:
    """Fine-tune the candidate from the versioned backbone on data.batch's labels."""
    from anomalyflow import steps
    from anomalyflow.data.loaders import read_table
    from anomalyflow.detector import AnomalyDetector

    params, paths, schema = _stage(params_path)
    batch_path = paths.batch
    try:
        backbone = AnomalyDetector.load(paths.backbone, params.runtime)
        batch = read_table(batch_path, schema)
        tuned = steps.finetune(batch, batch_path, params, paths, schema)
        steps.save_candidate(tuned, backbone, batch_path, paths)
    except InputError as error:
        _fail(str(error))
    typer.echo(f"Candidate: {paths.candidate}")


@app.command()
def evaluate(params_path: ParamsOption = Path("params.yaml")) -> None:
    """Evaluate the candidate (and production, if any) on the frozen holdout."""
    from anomalyflow import steps
    from anomalyflow.detector import AnomalyDetector

    params, paths, schema = _stage(params_path)
    candidate = AnomalyDetector.load(paths.candidate, params.runtime)
    report, _, _ = steps.evaluate_candidate(candidate, params, paths, schema)
    typer.echo(f"AUPRC {report.auprc:.4f}, AUROC {report.auroc:.4f}: {paths.evaluation}")


@app.command()
def gate(params_path: ParamsOption = Path("params.yaml")) -> None:
    """Apply the promotion policy to the evaluated candidate; write the decision record."""
    from anomalyflow import steps
    from anomalyflow.detector import AnomalyDetector

    params, paths, _ = _stage(params_path)
    candidate = AnomalyDetector.load(paths.candidate, params.runtime)
    report, production, comparison = steps.read_evaluation(paths)
    decision, _ = steps.gate(report, production, comparison, candidate, params, paths, None)
    for rule in decision.rules:
        typer.echo(
            f"  {'pass' if rule.passed else 'FAIL'}  {rule.rule}: {rule.value} "
            f"(threshold {rule.threshold}) {rule.note}"
        )
    typer.echo(f"Decision: {'approved' if decision.approved else 'rejected'}; {paths.decision}")


@app.command()
def report(
    open_page: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Write the review page of the latest run (evaluation, drift, decision, lineage)."""
    from anomalyflow import steps

    params, paths, schema = _stage(params_path)
    if not (paths.candidate / "detector.json").exists():
        _fail(f"no trained candidate in {paths.candidate}; run `anomalyflow run` first")
    page = steps.build_report(params, paths, schema)
    typer.echo(f"Report: {page}")
    if open_page:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())


@app.command()
def schedule(
    cron: Annotated[str, typer.Option(help="Cron expression, e.g. '0 3 * * *'.")],
    incoming: Annotated[
        Path | None, typer.Option(help="Folder where new batches arrive; default: data.incoming.")
    ] = None,
    port: Annotated[int, typer.Option(help="Port of a local server started here.")] = 4200,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Serve the retraining flow on a cron schedule through a real Prefect server."""
    from anomalyflow.scheduling import connect_or_start, use_server

    params = _load(params_path)
    _configure(params)
    folder = incoming or ArtifactPaths.from_params(params.paths, params.data).incoming
    server = connect_or_start(port)
    use_server(server)
    where = "started a local Prefect server" if server.process else "using the Prefect server"
    typer.echo(f"{where} at {server.api_url} (UI at {server.api_url.removesuffix('/api')})")
    folder.mkdir(parents=True, exist_ok=True)
    from flows.schedule import retrain_incoming

    typer.echo(
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
                "params_file": str(params_path.resolve()),
            },
        )
    finally:
        server.stop()


@app.command("pipeline-benchmark")
def pipeline_benchmark(
    rows: Annotated[int, typer.Option(help="Rows of the batch to validate and check.")] = (
        1_000_000
    ),
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Validation and drift rows/s on a large batch; a rerun's cost beside the first run."""
    from anomalyflow.benchmark.pipeline import measure_pipeline

    params = _load(params_path)
    _configure(params)
    figures = measure_pipeline(params, rows, params_path)
    typer.echo(
        f"validation (Great Expectations): {figures.validation_rows_per_second:,.0f} "
        f"rows/s on {figures.batch_rows:,} rows"
    )
    typer.echo(
        f"drift (Evidently): {figures.drift_rows_per_second:,.0f} rows/s; peak memory "
        f"{figures.peak_memory_mib:,.0f} MiB"
    )
    typer.echo(
        f"anomalyflow run: first {figures.first_run_seconds:.1f} s, second with nothing "
        f"changed {figures.second_run_seconds:.1f} s (ratio {figures.rerun_ratio:.2f})"
    )


@app.command("generate")
def generate(
    params_path: ParamsOption = Path("params.yaml"),
    out: Annotated[
        Path | None, typer.Option(help="Folder for the three files (default: the data.* paths).")
    ] = None,
) -> None:
    """The data stage: write the built-in data set (history, recent, holdout) as Parquet.

    With ``data.source: files`` nothing is generated: your files are checked, and DVC
    versions them as this stage's outputs.
    """
    from anomalyflow.data import synthetic
    from anomalyflow.jobs import prepare_data

    params = _load(params_path)
    if out is not None:
        written = synthetic.write_parquet(
            synthetic.generate(params.synthetic), synthetic.split_files(out)
        )
        for name, path in written.items():
            typer.echo(f"{name}: {path}")
        return
    paths = ArtifactPaths.from_params(params.paths, params.data)
    try:
        prepare_data(params, paths, regenerate=True)
        if not paths.batch.exists():
            raise InputError(paths.batch, None, "file not found (data.batch)")
    except InputError as error:
        _fail(str(error))
    kind = "generated" if params.data.source == "synthetic" else "your files, checked"
    typer.echo(f"Data ({kind}): {paths.reference}, {paths.batch}, {paths.holdout}")


@app.command("fit-score")
def fit_score(
    train: Annotated[Path, typer.Option(help="npz with X and y (1 = labeled anomaly).")],
    test: Annotated[Path, typer.Option(help="npz with X to score.")],
    out: Annotated[Path, typer.Option(help="Where to write the scores (.npy).")],
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Pretrain on TRAIN's X, fine-tune on its labels, write one score per TEST row."""
    from anomalyflow.jobs import fit_score as run_fit_score

    params = _load(params_path)
    _configure(params)
    try:
        scores = run_fit_score(train, test, out, params)
    except InputError as error:
        _fail(str(error))
    typer.echo(f"wrote {len(scores)} scores to {out}")


@app.command()
def threshold(
    data: Annotated[Path, typer.Option(help="CSV or Parquet with the model's features.")],
    model: Annotated[Path, typer.Option(help="Saved model folder.")] = Path("artifacts/candidate"),
    label_column: Annotated[
        str | None, typer.Option(help="Label column ('' for none); default: data.label.")
    ] = None,
    id_column: Annotated[
        str | None, typer.Option(help="Id column ('' for none); default: data.id.")
    ] = None,
    timestamp_column: Annotated[
        str | None, typer.Option(help="'' for none; default: data.timestamp.")
    ] = None,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Refit a saved model's threshold on DATA with params' threshold rule; no retraining."""
    from dataclasses import replace

    from anomalyflow.data.loaders import read_table
    from anomalyflow.detector import AnomalyDetector
    from anomalyflow.jobs import schema_from

    params = _load(params_path)
    detector = AnomalyDetector.load(model)
    detector.settings = replace(detector.settings, threshold=params.threshold)
    configured = schema_from(params.data)
    schema = Schema(
        detector.feature_names_,
        label=configured.label if label_column is None else label_column or None,
        id=configured.id if id_column is None else id_column or None,
        timestamp=configured.timestamp if timestamp_column is None else timestamp_column or None,
    )
    try:
        table = read_table(data, schema)
    except InputError as error:
        _fail(str(error))
    old = detector.threshold_
    new = detector.refit_threshold(table.x, table.y)
    detector.save(model)
    typer.echo(f"threshold {old:.4f} -> {new:.4f} ({params.threshold.method}); saved {model}")


@app.command()
def benchmark(
    data: Annotated[list[Path], typer.Argument(help="ADBench-style .npz files (X, y).")],
    label_ratio: Annotated[float, typer.Option(help="Share of train anomalies labeled.")] = 0.05,
    seeds: Annotated[int, typer.Option(help="Seeds (splits) per data set.")] = 3,
    out: Annotated[Path, typer.Option(help="Folder for JSON and plot.")] = Path(
        "benchmark-results"
    ),
    speed: Annotated[bool, typer.Option(help="Also measure throughput and memory.")] = True,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Run the few-label protocol: AnomalyFlow beside its peers on identical splits."""
    from anomalyflow.atomic import write_json
    from anomalyflow.benchmark import report
    from anomalyflow.benchmark.protocol import run_protocol
    from anomalyflow.benchmark.speed import measure
    from anomalyflow.jobs import settings_from

    params = _load(params_path)
    _configure(params)
    settings = settings_from(params)
    if not 0 <= label_ratio <= 1:
        _fail(f"--label-ratio must be within [0, 1], got {label_ratio}")
    try:
        outcomes = run_protocol(
            data,
            settings,
            label_ratio,
            seeds,
            params.benchmark.row_cap,
            params.benchmark.test_size,
            on_outcome=lambda o: typer.echo(
                f"  {o.dataset:<18} seed {o.seed}  {o.method:<24}"
                f"auroc {o.auroc:.3f}  auprc {o.auprc:.3f}  "
                f"{o.seconds:6.1f} s",
                err=True,
            ),
        )
    except InputError as error:
        _fail(str(error))
    typer.echo(report.table(outcomes, label_ratio))
    summary = report.summarize(outcomes, label_ratio)
    payload = {
        "command": " ".join(["anomalyflow", *sys.argv[1:]]),
        "row_cap": params.benchmark.row_cap,
        "seeds": seeds,
        "summary": summary,
        "outcomes": [asdict(o) for o in outcomes],
        "markdown": report.markdown_table(outcomes, label_ratio),
    }
    for method, entry in summary["methods"].items():
        if "anomalyflow_wins" in entry:
            typer.echo(
                f"anomalyflow vs {method:<24} wins {entry['anomalyflow_wins']:>2}  "
                f"losses {entry['anomalyflow_losses']:>2}  "
                f"Wilcoxon p {entry['wilcoxon_p']:.3g}"
            )
    if speed:
        figures = measure(data, settings, params.benchmark, params_path)
        payload["speed"] = asdict(figures) | {
            "scoring_to_forward_ratio": figures.scoring_to_forward_ratio
        }
        typer.echo(
            f"pretraining on {figures.dataset}: {figures.pretrain_rows_per_second:,.0f}"
            f" rows/s; scoring {figures.scoring_rows_per_second:,.0f} rows/s vs bare "
            f"forward {figures.bare_forward_rows_per_second:,.0f} rows/s (ratio "
            f"{figures.scoring_to_forward_ratio:.2f}); fit-score on "
            f"{figures.fit_score_dataset} ({figures.fit_score_rows:,} train rows): peak "
            f"{figures.fit_score_peak_memory_mib:,.0f} MiB, "
            f"{figures.fit_score_seconds:.0f} s"
        )
    tag = f"ratio-{label_ratio:g}"
    write_json(out / f"benchmark-{tag}.json", payload)
    report.plot(outcomes, label_ratio, out / f"benchmark-{tag}.png")
    typer.echo(f"wrote {out / f'benchmark-{tag}.json'} and {out / f'benchmark-{tag}.png'}")


def _registry(params: Params) -> Registry:
    from anomalyflow.registry.store import open_registry

    return open_registry(params.registry)


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """List registered versions: stage, gate, key metrics, creation time, data version."""
    import json

    registry = _registry(_load(params_path))
    versions = registry.versions()
    if as_json:
        typer.echo(json.dumps([v.to_dict() for v in versions], indent=2))
        return
    if not versions:
        typer.echo(f"No registered versions in {registry.home}; `anomalyflow run` adds one.")
        return
    typer.echo(
        f"{'version':<18}{'stage':<12}{'gate':<8}{'auprc':>7}{'auroc':>7}  "
        f"{'created (UTC)':<21}data"
    )
    for v in versions:
        auprc, auroc = (v.metrics.get(k, float("nan")) for k in ("auprc", "auroc"))
        typer.echo(
            f"{v.version:<18}{v.stage:<12}{'passed' if v.gate_passed else 'failed':<8}"
            f"{auprc:>7.3f}{auroc:>7.3f}  {v.created:%Y-%m-%d %H:%M:%S}  {v.data_version[:12]}"
        )


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to make production.")],
    force: Annotated[
        bool, typer.Option(help="Promote even though its gate failed (needs --reason).")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why; recorded in the audit log.")] = None,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Make VERSION production (after a serving smoke test) and archive the previous one."""
    from anomalyflow import steps
    from anomalyflow.registry.store import RegistryError
    from anomalyflow.serving.server import SmokeTestFailed

    params = _load(params_path)
    _configure(params)
    typer.echo(f"Smoke-testing the service with {version} ...")
    try:
        state = steps.promote(version, params, params_path, force=force, reason=reason)
    except (RegistryError, SmokeTestFailed) as error:
        _fail(f"{error}; production is unchanged")
    archived = state.previous[-1] if state.previous else None
    typer.echo(
        f"{version} is production"
        + (f"; {archived} archived" if archived else "")
        + ". A running service picks it up at its next request."
    )


@app.command()
def rollback(
    reason: Annotated[str | None, typer.Option(help="Why; recorded in the audit log.")] = None,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Restore the previous production version in one step."""
    from anomalyflow.registry.store import RegistryError

    registry = _registry(_load(params_path))
    try:
        before = registry.state().production
        state = registry.rollback(reason=reason)
    except RegistryError as error:
        _fail(str(error))
    typer.echo(f"{state.production} is production again; {before} archived.")


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

    disable_telemetry()
    os.environ.setdefault("PREFECT_API_URL", f"http://127.0.0.1:{PREFECT_PORT}/api")
    from prefect.flow_runs import resume_flow_run

    try:
        resume_flow_run(
            UUID(run_id),
            run_input={
                "approve": not reject,
                "reviewer": by or getpass.getuser(),
                "reason": reason,
            },
        )
    except Exception as error:  # Prefect raises several types: not found, not paused, ...
        _fail(f"could not answer flow run {run_id} at {os.environ['PREFECT_API_URL']}: {error}")
    typer.echo(f"{'Rejected' if reject else 'Approved'}; flow run {run_id} resumes.")


@app.command()
def serve(
    version: VersionOption = None,
    host: Annotated[str | None, typer.Option(help="Default: serving.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: serving.port.")] = None,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Serve the production model (or --model VERSION) with BentoML on localhost."""
    import subprocess

    from anomalyflow.serving.server import service_command, service_environment

    params = _load(params_path)
    registry = _registry(params)
    if version is None and registry.state().production is None:
        _fail(f"no production model in {registry.home}: `anomalyflow run` or `promote` first")
    command = service_command(host or params.serving.host, port or params.serving.port)
    typer.echo(f"Serving on http://{host or params.serving.host}:{port or params.serving.port}")
    raise typer.Exit(
        subprocess.call(command, env=service_environment(registry.home, params_path, version))
    )


@app.command()
def score(
    input_file: Annotated[Path, typer.Option("--input", help="CSV or Parquet to score.")],
    output_file: Annotated[Path, typer.Option("--output", help="CSV or Parquet to write.")],
    version: VersionOption = None,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Score a file in chunks with bounded memory: other columns plus score, is_anomaly."""
    from anomalyflow.registry.store import RegistryError
    from anomalyflow.scoring import score_file

    params = _load(params_path)
    _configure(params)
    try:
        detector = _registry(params).load(version)
        done = score_file(
            detector,
            input_file,
            output_file,
            params.serving.chunk_rows,
            progress=params.runtime.progress,
        )
    except (InputError, RegistryError) as error:
        _fail(str(error))
    typer.echo(
        f"Scored {done.rows} rows ({done.rows_per_second:,.0f} rows/s), "
        f"flagged {done.flagged}: {output_file}"
    )


@app.command()
def shadow(
    input_file: Annotated[Path, typer.Option("--input", help="CSV or Parquet batch.")],
    candidate: Annotated[
        str | None, typer.Option(help="Version to compare (default: the newest candidate).")
    ] = None,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Score a batch with production and a candidate; report where they disagree."""
    from anomalyflow import steps
    from anomalyflow.registry.store import RegistryError

    params = _load(params_path)
    _configure(params)
    paths = ArtifactPaths.from_params(params.paths, params.data)
    try:
        comparison = steps.shadow(input_file, candidate, params, paths)
    except (InputError, RegistryError) as error:
        _fail(str(error))
    flags = comparison["flags"]
    typer.echo(
        f"Production {comparison['production']} vs candidate {comparison['candidate']} on "
        f"{comparison['rows']} rows: both flag {flags['both']}, only production "
        f"{flags['production_only']}, only the candidate {flags['candidate_only']} "
        f"(disagreement {comparison['disagreement_rate']:.2%}); {paths.shadow}"
    )
    if (paths.candidate / "detector.json").exists():  # the latest run's page, with it added
        from anomalyflow.jobs import prepare_data

        page = steps.build_report(params, paths, prepare_data(params, paths))
        typer.echo(f"Report: {page}")


@app.command("serving-benchmark")
def serving_benchmark(
    rows: Annotated[int, typer.Option(help="Rows of the generated file to batch-score.")] = (
        5_000_000
    ),
    requests: Annotated[int, typer.Option(help="Single-record requests (latency, req/s).")] = (
        2000
    ),
    concurrency: Annotated[int, typer.Option(help="Concurrent clients for req/s.")] = 4,
    batch_records: Annotated[int, typer.Option(help="Records per batch request.")] = 1000,
    out: Annotated[Path, typer.Option(help="JSON with every figure.")] = Path(
        "benchmark-results/serving.json"
    ),
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Serving latency, req/s and batch rows/s; batch-file scoring speed and peak memory."""
    import torch

    from anomalyflow.atomic import write_json
    from anomalyflow.benchmark.serving import (
        MEMORY_TARGET_MIB,
        P50_TARGET_MS,
        measure_batch_scoring,
        measure_service,
    )
    from anomalyflow.serving.server import SmokeTestFailed

    params = _load(params_path)
    _configure(params)
    registry = _registry(params)
    if registry.production() is None:
        _fail(
            f"no production model in {registry.home}: run `anomalyflow run` first "
            "(it trains, gates and promotes one)"
        )
    if not 0 < batch_records <= params.serving.max_batch_records:
        _fail(f"--batch-records must be within 1..{params.serving.max_batch_records}")
    threads = torch.get_num_threads()
    typer.echo(
        f"{os.cpu_count()} CPU cores, {threads} torch threads; service on 127.0.0.1 over "
        "persistent HTTP connections (keep-alive: no TCP set-up in the figures)"
    )
    try:
        service = measure_service(registry, params_path, requests, concurrency, batch_records)
    except SmokeTestFailed as error:
        _fail(f"the service did not start: {error}")
    met = "met" if service.p50_target_met else "not met"
    typer.echo(
        f"single record ({requests} requests, model {service.version}): p50 "
        f"{service.p50_ms:.2f} ms, p99 {service.p99_ms:.2f} ms; in process p50 "
        f"{service.in_process_p50_ms:.2f} ms, p99 {service.in_process_p99_ms:.2f} ms "
        f"(overhead x{service.latency_ratio:.1f})"
    )
    typer.echo(f"target p50 < {P50_TARGET_MS:g} ms: {met}")
    typer.echo(
        f"{concurrency} concurrent clients: {service.requests_per_second:,.0f} req/s; in "
        f"process {service.in_process_calls_per_second:,.0f} calls/s "
        f"(overhead x{service.concurrency_ratio:.1f})"
    )
    typer.echo(
        f"batch endpoint ({batch_records} records a request): "
        f"{service.batch_rows_per_second:,.0f} rows/s; in process "
        f"{service.in_process_batch_rows_per_second:,.0f} rows/s "
        f"(overhead x{service.batch_ratio:.1f})"
    )
    scoring = measure_batch_scoring(registry, rows, params.serving.chunk_rows)
    typer.echo(
        f"batch scoring {scoring.rows:,} rows ({scoring.file_mib:,.0f} MiB Parquet, chunks of "
        f"{scoring.chunk_rows:,}): {scoring.scoring_rows_per_second:,.0f} rows/s; bare "
        f"forward pass {scoring.bare_forward_rows_per_second:,.0f} rows/s (ratio "
        f"{scoring.scoring_to_forward_ratio:.2f}); wrote {scoring.output_rows:,} rows"
    )
    typer.echo(
        f"peak memory of the scoring process: {scoring.peak_memory_mib:,.0f} MiB; target "
        f"< {MEMORY_TARGET_MIB:,.0f} MiB: {'met' if scoring.memory_target_met else 'not met'}"
    )
    payload = {
        "command": " ".join(["anomalyflow", *sys.argv[1:]]),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "service": asdict(service)
        | {
            "latency_ratio": service.latency_ratio,
            "concurrency_ratio": service.concurrency_ratio,
            "batch_ratio": service.batch_ratio,
            "p50_target_ms": P50_TARGET_MS,
            "p50_target_met": service.p50_target_met,
        },
        "batch_scoring": asdict(scoring)
        | {
            "scoring_rows_per_second": scoring.scoring_rows_per_second,
            "scoring_to_forward_ratio": scoring.scoring_to_forward_ratio,
            "memory_target_mib": MEMORY_TARGET_MIB,
            "memory_target_met": scoring.memory_target_met,
        },
    }
    write_json(out, payload)
    typer.echo(f"wrote {out}")
