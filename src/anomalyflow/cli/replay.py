"""``anomalyflow replay``: the retraining policy on a drifting stream, beside never and daily."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any

import typer

from anomalyflow.atomic import write_bytes, write_json
from anomalyflow.cli.common import DEFAULT_PARAMS, Commands, ParamsOption, configured, fail

app = Commands()
TARGET_SHARE_OF_DAILY = 0.9  # the policy keeps this share of daily's after-drift AUPRC...
TARGET_RETRAIN_RATIO = 0.5  # ...with at most this share of its retrains


@app.command()
def replay(
    days: Annotated[
        int, typer.Option(min=2, max=3650, help="Days to stream; drift starts half way.")
    ] = 30,
    label_delay: Annotated[
        int, typer.Option(min=0, help="Days until a fraud's confirmation arrives as a label.")
    ] = 3,
    rows_per_day: Annotated[
        int, typer.Option(min=500, max=1_000_000, help="Transactions a day.")
    ] = 4000,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to this file.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Also write the plot (PNG) here.")] = None,
    params_path: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Stream the built-in data day by day, with a drift half way and late labels, through
    the scheduled flow's steps under three policies: never, daily and params.yaml's."""
    from anomalyflow.pipeline.context import RunContext
    from anomalyflow.pipeline.review import REPLAY_FIGURES
    from anomalyflow.pipeline.state import exclusive_run
    from anomalyflow.replay.outcome import replay_json
    from anomalyflow.replay.simulate import Replay, ReplaySettings
    from anomalyflow.reports.plots import replay_png

    configured(params_path)
    for option, path in (("--json", json_file), ("--plot", plot)):
        if path is not None and path.is_dir():
            fail(f"{option}: {path} is a folder; name a file to write")
        existing = next((p for p in (path.parents if path else ()) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            fail(f"{option}: {path} lies under {existing}, which is a file, not a folder")
    project = RunContext.prepare(params_path)
    settings = ReplaySettings(days, label_delay, rows_per_day)
    typer.echo(
        f"Replaying {days} days of {rows_per_day} transactions, drift from day "
        f"{settings.drift_day}, labels {label_delay} days late (simulated clock; production "
        "held in memory: no registration or serving smoke test)."
    )
    with exclusive_run(project.paths) as own_folder:
        tracks = Replay.prepare(project.in_run_folder(own_folder), settings, typer.echo).run()
    figures = replay_json(tracks, settings.drift_day, label_delay)
    png = base64.b64decode(replay_png(figures).split(",", 1)[1])
    for target, write in (
        (project.paths.replay / REPLAY_FIGURES, lambda p: write_json(p, figures)),
        (project.paths.replay / "replay.png", lambda p: write_bytes(p, png)),
        (json_file, lambda p: write_json(p, figures)),
        (plot, lambda p: write_bytes(p, png)),
    ):
        if target is not None:
            write(target)
    typer.echo("\n".join(_verdict(figures)))


def _verdict(figures: dict[str, Any]) -> list[str]:
    """The after-drift figures per policy, and the policy against its target."""
    policies = figures["policies"]
    lines = [f"After the drift (day {figures['drift_day']} on; means of the days):"]
    for name, f in policies.items():
        lines.append(
            f"  {name:<7} retrains {f['retrains']:>3}, promotions {f['promotions']:>3}, "
            f"AUPRC {_shown(f['auprc_after_drift'])}, precision at the alert budget "
            f"{_shown(f['precision_at_alert_budget_after_drift'])}"
        )
    policy, daily, never = (policies[n]["auprc_after_drift"] for n in ("policy", "daily", "never"))
    if policy is None or daily is None or never is None:
        return [*lines, "Target: not judged, no fraud after the drift."]
    share = policy / daily
    retrains = policies["policy"]["retrains"] / max(policies["daily"]["retrains"], 1)
    beats_never = policy > never
    met = share >= TARGET_SHARE_OF_DAILY and retrains <= TARGET_RETRAIN_RATIO and beats_never
    lines.append(
        f"Target {'met' if met else 'NOT met'}: the policy keeps {share:.2f}x daily's AUPRC "
        f"(target >= {TARGET_SHARE_OF_DAILY}) with {retrains:.2f}x its retrains (target <= "
        f"{TARGET_RETRAIN_RATIO}), and {'beats' if beats_never else 'does not beat'} never."
    )
    return lines


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
