"""Commands that measure: detection quality beside peers, pipeline and serving speed."""

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
    from anomalyflow.benchmark.protocol import Budget, Outcome
    from anomalyflow.benchmark.serving import ServiceFigures

app = Commands()


@app.command("fit-score")
def fit_score(
    train: Annotated[Path, typer.Option(help="npz with X and y (1 = labeled anomaly).")],
    test: Annotated[Path, typer.Option(help="npz with X to score.")],
    out: Annotated[Path, typer.Option(help="Where to write the scores (.npy).")],
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Pretrain on TRAIN's X, fine-tune on its labels, write one score per TEST row."""
    from anomalyflow.fit_score import fit_score as run_fit_score

    scores = run_fit_score(train, test, out, configured(params_path))
    typer.echo(f"wrote {len(scores)} scores to {out}")


@app.command()
def benchmark(
    data: Annotated[list[Path], typer.Argument(help="ADBench-style .npz files (X, y).")],
    label_ratio: Annotated[float, typer.Option(help="Share of train anomalies labeled.")] = 0.05,
    labels: Annotated[
        int | None,
        typer.Option(
            help="Train anomalies labeled (ADGym's protocol; all when fewer); replaces "
            "--label-ratio. Run once per count (5, 10, 25)."
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Seeds (splits) per data set.")] = 3,
    out: Annotated[Path, typer.Option(help="Folder for JSON and plot.")] = Path(
        "benchmark-results"
    ),
    speed: Annotated[bool, typer.Option(help="Also measure throughput and memory.")] = True,
    jobs: Annotated[
        int, typer.Option(help="Processes, one thread each: data sets and seeds in parallel.")
    ] = 1,
    resume: Annotated[
        bool, typer.Option(help="Keep the units that OUT's journal of this same run finished.")
    ] = False,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Run the few-label protocol: AnomalyFlow beside its peers on identical splits.

    Each finished data set and seed is journaled in OUT as it ends, so a killed run
    resumes with --resume (the same command), on this machine or from another's journal.
    """
    from anomalyflow.benchmark import peers
    from anomalyflow.benchmark.journal import Journal
    from anomalyflow.benchmark.protocol import Budget
    from anomalyflow.benchmark.runner import run_benchmark, run_description
    from anomalyflow.detector import DetectorSettings

    params = configured(params_path)
    settings = DetectorSettings.from_params(params)
    if not 0 <= label_ratio <= 1:
        fail(f"--label-ratio must be within [0, 1], got {label_ratio}")
    if labels is not None and labels < 0:
        fail(f"--labels must be 0 or more, got {labels}")
    if jobs < 1:
        fail(f"--jobs must be 1 or more, got {jobs}")
    budget = Budget(label_ratio, labels, params.benchmark.row_cap, params.benchmark.test_size)
    choice = peers.protocol_methods(settings, label_ratio, labels)
    for name, install in choice.skipped.items():
        typer.echo(f"skipped {name}: its library does not import; install: {install}")
    names = list(choice.run)
    tag = f"ratio-{label_ratio:g}" if labels is None else f"labels-{labels}"
    run = run_description(data, settings, budget, names)
    journal = Journal.start(out / f"benchmark-{tag}.jsonl", run, resume)
    if journal.units:
        typer.echo(f"resuming: {len(journal.units)} data set and seed units from {journal.path}")
    units = [(path, seed) for path in data for seed in range(seeds)]
    outcomes = run_benchmark(units, settings, budget, names, journal, jobs, _progress)
    payload = _report(outcomes, budget, seeds, choice.skipped)
    if speed:
        payload["speed"] = _measure_speed(data, params_path)
    _write_report(payload, outcomes, budget, out, f"benchmark-{tag}")


def _report(
    run: list[Outcome], budget: Budget, seeds: int, skipped: dict[str, str]
) -> dict[str, Any]:
    """Print the run's table and wins; return everything the JSON report holds."""
    from anomalyflow.benchmark import report

    ratio, labels = budget.label_ratio, budget.labels
    outcomes, notes = _with_best_peer(run, report.headline_metric(ratio, labels), labels)
    typer.echo(report.table(outcomes, ratio, labels))
    summary = report.summarize(outcomes, ratio, labels)
    _echo_wins(summary)
    return {
        "command": " ".join(["anomalyflow", *sys.argv[1:]]),
        "row_cap": budget.row_cap,
        "seeds": seeds,
        "summary": summary,
        "skipped_peers": skipped,
        **notes,
        "outcomes": [asdict(o) for o in outcomes],
        "markdown": report.markdown_table(outcomes, ratio, labels),
    }


def _write_report(
    payload: dict[str, Any], outcomes: list[Outcome], budget: Budget, out: Path, name: str
) -> None:
    from anomalyflow.atomic import write_json
    from anomalyflow.benchmark import report

    write_json(out / f"{name}.json", payload)
    report.plot(outcomes, budget.label_ratio, out / f"{name}.png", budget.labels)
    typer.echo(f"wrote {out / f'{name}.json'} and {out / f'{name}.png'}")


def _with_best_peer(
    outcomes: list[Outcome], metric: str, labels: int | None
) -> tuple[list[Outcome], dict[str, Any]]:
    """Add the per-data-set best peer; say which splits had fewer anomalies than ``labels``."""
    from anomalyflow.benchmark import peers

    best = peers.best_peer_choices(outcomes, metric)
    short = peers.short_of_labels(outcomes, labels) if labels is not None else {}
    for split, count in short.items():
        typer.echo(f"{split}: fewer than {labels} train anomalies; all {count} labeled")
    notes = {"best_peer_per_dataset": best, "fewer_anomalies_than_labels": short}
    return (peers.with_best_peer(outcomes, metric) if best else outcomes), notes


def _progress(unit: list[Outcome]) -> None:
    for o in unit:
        typer.echo(
            f"  {o.dataset:<18} seed {o.seed}  {o.method:<24}auroc {o.auroc:.3f}  "
            f"auprc {o.auprc:.3f}  {o.seconds:6.1f} s",
            err=True,
        )


def _echo_wins(summary: dict[str, Any]) -> None:
    for method, entry in summary["methods"].items():
        if "anomalyflow_wins" in entry:
            typer.echo(
                f"anomalyflow vs {method:<24} wins {entry['anomalyflow_wins']:>2}  "
                f"losses {entry['anomalyflow_losses']:>2}  "
                f"Wilcoxon p {entry['wilcoxon_p']:.3g}"
            )


def _measure_speed(data: list[Path], params_path: Path) -> dict[str, Any]:
    """Pretraining and scoring throughput, and fit-score's peak memory, printed and returned."""
    from anomalyflow.benchmark.speed import measure
    from anomalyflow.detector import DetectorSettings

    params = configured(params_path)
    figures = measure(data, DetectorSettings.from_params(params), params.benchmark, params_path)
    typer.echo(
        f"pretraining on {figures.dataset}: {figures.pretrain_rows_per_second:,.0f}"
        f" rows/s; scoring {figures.scoring_rows_per_second:,.0f} rows/s vs bare "
        f"forward {figures.bare_forward_rows_per_second:,.0f} rows/s (ratio "
        f"{figures.scoring_to_forward_ratio:.2f}); fit-score on "
        f"{figures.fit_score_dataset} ({figures.fit_score_rows:,} train rows): peak "
        f"{figures.fit_score_peak_memory_mib:,.0f} MiB, "
        f"{figures.fit_score_seconds:.0f} s"
    )
    return asdict(figures) | {"scoring_to_forward_ratio": figures.scoring_to_forward_ratio}


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
