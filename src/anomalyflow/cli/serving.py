"""Commands that use a model: serve it over HTTP, score a file, refit its threshold."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from anomalyflow.cli.common import (
    DEFAULT_PARAMS,
    Commands,
    ParamsOption,
    VersionOption,
    configured,
    fail,
)
from anomalyflow.cli.registry import open_configured_registry
from anomalyflow.params import load_params

app = Commands()
LOOPBACK = ("127.0.0.1", "localhost", "::1")  # reachable from this machine only


@app.command()
def serve(
    version: VersionOption = None,
    host: Annotated[str | None, typer.Option(help="Default: serving.host.")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Default: serving.port.")
    ] = None,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Serve the production model (or --model VERSION) with BentoML on localhost.

    The BentoML server replaces this process (exec), so a signal sent to it (Ctrl-C,
    ``kill``) stops the server and its workers, with nothing left on the port.
    """
    from anomalyflow.serving.server import service_command, service_environment

    params = load_params(params_path)
    registry = open_configured_registry(params)
    if version is None and registry.state().production is None:
        fail(
            f"no production version of {registry.name} in {registry.home}: "
            "`anomalyflow run` or `promote` first"
        )
    if version is not None:
        version = registry.resolve(version)  # a typo is one line here, not a failed start
    host, port = host or params.serving.host, port or params.serving.port
    if host not in LOOPBACK and not _is_ip_address(host):
        fail(f"--host: {host!r} is not an IP address (BentoML binds one, or localhost)")
    token_variable = params.serving.api_token_env
    if host not in LOOPBACK and not os.environ.get(token_variable):
        fail(f"serving on {host} needs a token: set {token_variable} (clients send it as Bearer)")
    _refuse_a_port_in_use(host, port)
    command = service_command(host, port)
    typer.echo(f"Serving model {registry.name} on http://{host}:{port}")
    environment = service_environment(registry.home, params_path, version, model_name=registry.name)
    os.execve(command[0], command, environment)


def _refuse_a_port_in_use(host: str, port: int) -> None:
    """BentoML reports a port in use with a traceback and exit 1, once it has started."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind((host, port))
        except OSError as error:
            fail(f"--port: cannot listen on {host}:{port} ({error.strerror}); choose another")


def _is_ip_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@app.command()
def score(
    input_file: Annotated[Path, typer.Option("--input", help="CSV or Parquet to score.")],
    output_file: Annotated[Path, typer.Option("--output", help="CSV or Parquet to write.")],
    version: VersionOption = None,
    dask_address: Annotated[
        str | None,
        typer.Option(
            "--dask",
            help="'local' (a LocalCluster of orchestration.dask_workers) or a scheduler "
            "address: one partition per Parquet row group, or per file of an input folder; "
            "an output not ending in .parquet/.csv is a folder of parts.",
        ),
    ] = None,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Score a file in chunks with bounded memory: other columns plus score, is_anomaly."""
    from anomalyflow.scoring import score_file

    params = configured(params_path)
    registry = open_configured_registry(params)
    chosen = registry.resolve(version or "production")
    detector = registry.load(chosen)  # verified against its recorded hash
    if dask_address:
        from anomalyflow.scoring_dask import score_on_dask

        done = score_on_dask(
            detector,
            input_file,
            output_file,
            params.serving.chunk_rows,
            dask_address,
            local_workers=params.orchestration.dask_workers,
            progress=params.runtime.progress,
        )
    else:
        done = score_file(
            detector,
            input_file,
            output_file,
            params.serving.chunk_rows,
            progress=params.runtime.progress,
        )
    typer.echo(
        f"Scored {done.rows} rows with {registry.name}:{chosen} "
        f"({done.rows_per_second:,.0f} rows/s), flagged {done.flagged}: {output_file}"
    )


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
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Refit a saved model's threshold on DATA with params' threshold rule; no retraining."""
    from dataclasses import replace

    from anomalyflow.data.loaders import read_table
    from anomalyflow.data.schema import Schema
    from anomalyflow.detector import AnomalyDetector
    from anomalyflow.pipeline.data import schema_from
    from anomalyflow.registry.bento_store import stored_version_holding

    params = load_params(params_path)
    stored = stored_version_holding(model)
    if stored is not None:
        fail(
            f"--model: {model} is version {stored.name} in the model store, which is never "
            "changed in place (its hashes and audit log record it); refit a copy of it"
        )
    detector = AnomalyDetector.load(model)
    detector.settings = replace(detector.resolved_settings(), threshold=params.threshold)
    configured_roles = schema_from(params.data)

    def role(given: str | None, default: str | None) -> str | None:
        return default if given is None else given or None

    schema = Schema(
        detector.feature_names_,
        label=role(label_column, configured_roles.label),
        id=role(id_column, configured_roles.id),
        timestamp=role(timestamp_column, configured_roles.timestamp),
    )
    table = read_table(data, schema)
    old = detector.threshold_
    new = detector.refit_threshold(table.x, table.y)
    detector.save(model)
    typer.echo(f"threshold {old:.4f} -> {new:.4f} ({params.threshold.method}); saved {model}")
