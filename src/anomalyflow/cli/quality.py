"""Commands that measure detection quality: the few-label protocol beside every peer.

``benchmark`` runs AnomalyFlow and its peers on identical splits of ADBench-style data
sets; ``fit-score`` is one fit and score, for a peer's harness that drives AnomalyFlow.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from anomalyflow.cli.common import DEFAULT_PARAMS, Commands, ParamsOption, configured, fail

if TYPE_CHECKING:
    from anomalyflow.benchmark.peers import PeerChoice
    from anomalyflow.benchmark.protocol import Budget, Outcome

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


LabelsOption = Annotated[
    int | None,
    typer.Option(
        help="Train anomalies labeled (ADGym's protocol; all when fewer); replaces "
        "--label-ratio. Run once per count (5, 10, 25)."
    ),
]
JobsOption = Annotated[
    int, typer.Option(help="Processes, one thread each: data sets and seeds in parallel.")
]
ResumeOption = Annotated[
    bool, typer.Option(help="Keep the units that OUT's journal of this same run finished.")
]
MethodsOption = Annotated[
    str | None, typer.Option(help="Comma-separated methods to run (default: every one).")
]
PeersFromOption = Annotated[
    Path | None,
    typer.Option(
        help="An earlier run's journal on the same splits: the other methods' "
        "outcomes are taken from it instead of run again."
    ),
]


@app.command()
def benchmark(
    data: Annotated[list[Path], typer.Argument(help="ADBench-style .npz files (X, y).")],
    label_ratio: Annotated[float, typer.Option(help="Share of train anomalies labeled.")] = 0.05,
    labels: LabelsOption = None,
    seeds: Annotated[int, typer.Option(help="Seeds (splits) per data set.")] = 3,
    out: Annotated[Path, typer.Option(help="Folder for JSON and plot.")] = Path(
        "benchmark-results"
    ),
    speed: Annotated[bool, typer.Option(help="Also measure throughput and memory.")] = True,
    jobs: JobsOption = 1,
    resume: ResumeOption = False,
    methods: MethodsOption = None,
    peers_from: PeersFromOption = None,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Run the few-label protocol: AnomalyFlow beside its peers on identical splits.

    Each finished data set and seed is journaled in OUT as it ends, so a killed run
    resumes with --resume (the same command), on this machine or from another's journal.
    After a change to AnomalyFlow, --methods anomalyflow --peers-from JOURNAL runs it alone
    and takes the peers' outcomes from an earlier run on the same splits.
    """
    from anomalyflow.benchmark import peers
    from anomalyflow.benchmark.journal import Journal
    from anomalyflow.benchmark.protocol import Budget, refuse_unusable_data
    from anomalyflow.benchmark.reuse import reused_outcomes
    from anomalyflow.benchmark.runner import run_benchmark, run_description
    from anomalyflow.detector import DetectorSettings

    params = configured(params_path)
    settings = DetectorSettings.from_params(params)
    _refuse_bad_counts(label_ratio, labels, seeds, jobs)
    budget = Budget(label_ratio, labels, params.benchmark.row_cap, params.benchmark.test_size)
    refuse_unusable_data(data)
    choice = peers.protocol_methods(settings, label_ratio, labels)
    names, skipped = _chosen(methods, choice)
    for name, install in skipped.items():
        typer.echo(f"skipped {name}: its library does not import; install: {install}")
    tag = f"ratio-{label_ratio:g}" if labels is None else f"labels-{labels}"
    run = run_description(data, settings, budget, names)
    units = [(path, seed) for path in data for seed in range(seeds)]
    keys = [(path.stem, seed) for path, seed in units]
    reused = reused_outcomes(peers_from, run, keys, set(names)) if peers_from else None
    journal = Journal.start(out / f"benchmark-{tag}.jsonl", run, resume)
    if journal.units:
        typer.echo(f"resuming: {len(journal.units)} data set and seed units from {journal.path}")
    outcomes = run_benchmark(units, settings, budget, names, journal, jobs, _progress)
    if reused is not None:
        outcomes += [o for key in keys for o in reused.units[key]]
    payload = _report(outcomes, budget, seeds, skipped)
    if reused is not None:
        payload["peers_from"] = reused.source
    if speed:
        payload["speed"] = _measure_speed(data, params_path)
    _write_report(payload, outcomes, budget, out, f"benchmark-{tag}")


def _refuse_bad_counts(label_ratio: float, labels: int | None, seeds: int, jobs: int) -> None:
    """Refuse a budget or count no run can have, before any file is read or written."""
    if not 0 <= label_ratio <= 1:
        fail(f"--label-ratio must be within [0, 1], got {label_ratio}")
    if labels is not None and labels < 0:
        fail(f"--labels must be 0 or more, got {labels}")
    if seeds < 1:
        fail(f"--seeds must be 1 or more, got {seeds}")
    if jobs < 1:
        fail(f"--jobs must be 1 or more, got {jobs}")


def _chosen(methods: str | None, choice: PeerChoice) -> tuple[list[str], dict[str, str]]:
    """The methods ``--methods`` names (every one that runs without it) and the peers left
    out for want of their library; a refusal naming a method unknown or not installed."""
    if methods is None:
        return list(choice.run), choice.skipped
    names = [name.strip() for name in methods.split(",") if name.strip()]
    for name in names:
        if name in choice.skipped:
            fail(
                f"--methods: {name!r}: its library does not import; install: {choice.skipped[name]}"
            )
        if name not in choice.run:
            every = ", ".join(choice.run)
            fail(f"--methods: {name!r} is not one of this budget's methods ({every})")
    if not names:
        fail("--methods: name at least one method")
    return names, {}


def _report(
    run: list[Outcome], budget: Budget, seeds: int, skipped: dict[str, str]
) -> dict[str, Any]:
    """Print the run's table and wins; return everything the JSON report holds."""
    from anomalyflow.benchmark import report

    ratio, labels = budget.label_ratio, budget.labels
    outcomes, notes = _with_best_peer(run, report.headline_metric(ratio, labels), labels)
    summary = report.summarize(outcomes, ratio, labels)
    typer.echo(report.table(outcomes, summary))
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
    if not best:
        return outcomes, notes
    return peers.with_held_out_best_peer(peers.with_best_peer(outcomes, metric), metric), notes


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


@app.command("benchmark-efficiency")
def benchmark_efficiency(
    reports: Annotated[
        list[Path],
        typer.Argument(help="Reports of benchmark --labels N (and of --label-ratio 0)."),
    ],
    out: Annotated[Path, typer.Option(help="Where to write the plot (PNG).")] = Path(
        "benchmark-results/label-efficiency.png"
    ),
) -> None:
    """Mean AUPRC against labeled anomalies: AnomalyFlow, CatBoost, the best (deep) peer."""
    from anomalyflow.benchmark.efficiency import curves, plot_curves, read_points

    drawn = curves(read_points(reports))
    for curve in drawn:
        figures = "  ".join(f"{count} labels {auprc:.3f}" for count, auprc in curve.points.items())
        typer.echo(f"{curve.method:<20}{figures}")
    plot_curves(drawn, out)
    typer.echo(f"wrote {out}")
