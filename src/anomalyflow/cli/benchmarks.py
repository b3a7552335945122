"""Commands that measure speed and scale: the pipeline, serving, a soak, a streamed reference."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from anomalyflow.cli.common import DEFAULT_PARAMS, Commands, ParamsOption, configured, fail
from anomalyflow.cli.registry import open_configured_registry

if TYPE_CHECKING:
    from anomalyflow.benchmark.batch_scoring import BatchScoringFigures
    from anomalyflow.benchmark.serving import ServiceFigures

app = Commands()


@app.command("pipeline-benchmark")
def pipeline_benchmark(
    rows: Annotated[int, typer.Option(help="Rows of the batch to validate and check.")] = (
        1_000_000
    ),
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Validation and drift rows/s on a large batch; a rerun's cost beside the first run."""
    from anomalyflow.benchmark.pipeline import measure_pipeline

    figures = measure_pipeline(configured(params_path), rows, params_path)
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
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Serving latency, req/s and batch rows/s; batch-file scoring speed and peak memory."""
    import torch

    from anomalyflow.atomic import write_json
    from anomalyflow.benchmark.batch_scoring import measure_batch_scoring
    from anomalyflow.benchmark.serving import measure_service
    from anomalyflow.serving.server import TORCH_THREADS

    params = configured(params_path)
    registry = open_configured_registry(params)
    if registry.production() is None:
        fail(
            f"no production model in {registry.home}: run `anomalyflow run` first "
            "(it trains, gates and promotes one)"
        )
    if not 0 < batch_records <= params.serving.max_batch_records:
        fail(f"--batch-records must be within 1..{params.serving.max_batch_records}")
    threads = torch.get_num_threads()
    typer.echo(
        f"{os.cpu_count()} CPU cores, {threads} torch threads ({TORCH_THREADS} in the "
        "service and its in-process twin); services on 127.0.0.1 over persistent HTTP "
        "connections (keep-alive: no TCP set-up in the figures)"
    )
    service = measure_service(registry, params_path, requests, concurrency, batch_records)
    _echo_service(service, requests, concurrency, batch_records)
    scoring = measure_batch_scoring(registry, rows, params.serving.chunk_rows)
    _echo_scoring(scoring)
    payload = {
        "command": " ".join(["anomalyflow", *sys.argv[1:]]),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
    } | _serving_payload(service, scoring)
    write_json(out, payload)
    typer.echo(f"wrote {out}")


def _echo_service(
    service: ServiceFigures, requests: int, concurrency: int, batch_records: int
) -> None:
    from anomalyflow.benchmark.serving import BARE_RATIO_TARGET, P50_TARGET_MS

    typer.echo(
        f"single record ({requests} requests, model {service.version}): p50 "
        f"{service.p50_ms:.2f} ms, p99 {service.p99_ms:.2f} ms; in process p50 "
        f"{service.in_process_p50_ms:.2f} ms, p99 {service.in_process_p99_ms:.2f} ms "
        f"(overhead x{service.latency_ratio:.1f})"
    )
    typer.echo(
        f"target p50 < {P50_TARGET_MS:g} ms: {'met' if service.p50_target_met else 'not met'}"
    )
    typer.echo(
        f"bare BentoML service (same requests and client, no model): p50 "
        f"{service.bare_p50_ms:.2f} ms, p99 {service.bare_p99_ms:.2f} ms; p50 ratio "
        f"{service.bare_ratio:.2f} (target <= {BARE_RATIO_TARGET:g}: "
        f"{'met' if service.bare_target_met else 'not met'}); CPU a request "
        f"{service.cpu_ms:.2f} ms, bare {service.bare_cpu_ms:.2f} ms (ratio "
        f"{service.bare_cpu_ratio:.2f}, steadier than latency on a shared machine)"
    )
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


def _echo_scoring(scoring: BatchScoringFigures) -> None:
    from anomalyflow.benchmark.batch_scoring import MEMORY_TARGET_MIB

    typer.echo(
        f"batch scoring {scoring.rows:,} rows ({scoring.file_mib:,.0f} MiB Parquet, chunks of "
        f"{scoring.chunk_rows:,}): {scoring.scoring_rows_per_second:,.0f} rows/s; bare "
        f"forward pass {scoring.bare_forward_rows_per_second:,.0f} rows/s (ratio "
        f"{scoring.scoring_to_forward_ratio:.2f}); wrote {scoring.output_rows:,} rows"
    )
    met = "met" if scoring.memory_target_met else "not met"
    typer.echo(
        f"peak memory of the scoring process: {scoring.peak_memory_mib:,.0f} MiB; target "
        f"< {MEMORY_TARGET_MIB:,.0f} MiB: {met}"
    )


def _serving_payload(service: ServiceFigures, scoring: BatchScoringFigures) -> dict[str, Any]:
    from anomalyflow.benchmark.batch_scoring import MEMORY_TARGET_MIB
    from anomalyflow.benchmark.serving import BARE_RATIO_TARGET, P50_TARGET_MS

    return {
        "service": asdict(service)
        | {
            "latency_ratio": service.latency_ratio,
            "bare_ratio": service.bare_ratio,
            "bare_ratio_target": BARE_RATIO_TARGET,
            "bare_ratio_target_met": service.bare_target_met,
            "bare_cpu_ratio": service.bare_cpu_ratio,
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


@app.command("benchmark-soak")
def benchmark_soak(
    clients: Annotated[int, typer.Option(min=1, help="Client threads sending at once.")] = 8,
    seconds: Annotated[float, typer.Option(min=3, help="How long the clients send.")] = 60.0,
    batch_every: Annotated[int, typer.Option(min=1, help="Every n-th request a batch.")] = 10,
    batch_records: Annotated[int, typer.Option(min=1, help="Records per batch request.")] = 100,
    target: Annotated[
        str | None,
        typer.Option(help="Version promoted mid-soak; default: the previous production."),
    ] = None,
    out: Annotated[Path, typer.Option(help="JSON with every figure.")] = Path(
        "benchmark-results/soak.json"
    ),
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Clients score through `anomalyflow serve` while a version is promoted, then rolled
    back: req/s, p50/p99 and errors (target: none)."""
    from anomalyflow.atomic import write_json
    from anomalyflow.benchmark.soak import soak

    params = configured(params_path)
    if batch_records > params.serving.max_batch_records:
        fail(f"--batch-records must be within 1..{params.serving.max_batch_records}")
    registry = open_configured_registry(params)
    typer.echo(
        f"{os.cpu_count()} CPU cores; {clients} clients for {seconds:g} s on 127.0.0.1, "
        f"every {batch_every}th request a batch of {batch_records} records"
    )
    token = os.environ.get(params.serving.api_token_env) or None
    figures = soak(
        registry, params_path, clients, seconds, batch_every, batch_records, target, token
    )
    typer.echo(
        f"{figures.requests:,} requests ({figures.singles:,} single, {figures.batches:,} batch) "
        f"in {figures.seconds:.1f} s: {figures.requests_per_second:,.0f} req/s; p50 "
        f"{figures.p50_ms:.1f} ms, p99 {figures.p99_ms:.1f} ms (single p50 "
        f"{figures.single_p50_ms:.1f} / p99 {figures.single_p99_ms:.1f} ms; batch p50 "
        f"{figures.batch_p50_ms:.1f} / p99 {figures.batch_p99_ms:.1f} ms)"
    )
    for change in figures.changes:
        typer.echo(f"  {change['action']} at {change['at_s']} s, took {change['took_s']} s")
    typer.echo(f"answers by version: {figures.answers_by_version}")
    typer.echo(f"errors: {figures.errors} (target 0: {'met' if not figures.errors else 'not met'})")
    for sample in figures.error_samples:
        typer.echo(f"  {sample}")
    payload = {"command": " ".join(["anomalyflow", *sys.argv[1:]]), "cpu_count": os.cpu_count()}
    write_json(out, payload | asdict(figures))
    typer.echo(f"wrote {out}")


@app.command("benchmark-stream")
def benchmark_stream(
    rows: Annotated[int, typer.Option(min=1000, help="Rows of the generated reference.")] = (
        20_000_000
    ),
    features: Annotated[int, typer.Option(min=2, help="Its feature columns.")] = 16,
    group_rows: Annotated[int, typer.Option(min=1000, help="Rows per Parquet row group.")] = (
        250_000
    ),
    sample_rows: Annotated[
        int, typer.Option(min=4000, help="Rows of the sample trained in memory and streamed.")
    ] = 200_000,
    curve_epochs: Annotated[int, typer.Option(min=1, help="Epochs of the sample's runs.")] = 10,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Pretraining batch; default: pretrain.batch_size.")
    ] = 4096,
    out: Annotated[Path, typer.Option(help="Folder for the generated files and JSON.")] = Path(
        "artifacts/benchmark-stream"
    ),
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Pretrain from a generated Parquet reference larger than memory: peak RSS beside the
    rows (target under 2 GiB), and the loss curves of in-memory and streamed training."""
    from anomalyflow.atomic import write_json
    from anomalyflow.benchmark.streaming import Shape, run_benchmark

    configured(params_path)
    shape = Shape(rows, features, group_rows, sample_rows, curve_epochs)
    figures = run_benchmark(shape, batch_size, out, params_path, typer.echo)
    payload = {"command": " ".join(["anomalyflow", *sys.argv[1:]])}
    write_json(out / "benchmark-stream.json", payload | figures)
    typer.echo(f"wrote {out / 'benchmark-stream.json'}")
