"""Tables, JSON and a plot of a protocol run, with a paired comparison per data set.

Beside the quality, each table and summary carries the fit cost: seconds per data set and
method, and their ratio to CatBoost's (:mod:`anomalyflow.benchmark.cost`).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomalyflow.benchmark.cost import cost_summary, cost_table, markdown_cost_table
from anomalyflow.benchmark.luck import best_peer_luck, best_peer_split_luck
from anomalyflow.benchmark.paired import paired
from anomalyflow.benchmark.protocol import REFERENCE, Outcome

FEW_TEST_ANOMALIES = 10
"""Below this many anomalies in a set's test rows, each one moves the set's AUPRC a lot."""


def outcome_frame(outcomes: list[Outcome]) -> pd.DataFrame:
    """One row per data set, seed and method."""
    return pd.DataFrame([asdict(o) for o in outcomes])


def headline_metric(label_ratio: float, labels: int | None = None) -> str:
    """AUPRC when labels exist (what an analyst budget feels), AUROC without them."""
    return "auprc" if (label_ratio if labels is None else labels) > 0 else "auroc"


def budget_words(label_ratio: float, labels: int | None = None) -> str:
    """The label budget as a title says it: a ratio, or a count of labeled anomalies."""
    return f"label ratio {label_ratio}" if labels is None else f"{labels} labeled anomalies"


def summarize(
    outcomes: list[Outcome], label_ratio: float, labels: int | None = None
) -> dict[str, Any]:
    """Means, spreads over seeds, wall time and paired wins against AnomalyFlow."""
    frame = outcome_frame(outcomes)
    metric = headline_metric(label_ratio, labels)
    per_dataset = frame.pivot_table(index="dataset", columns="method", values=metric)
    per_seed_mean = frame.groupby(["method", "seed"])[metric].mean().unstack("seed")
    summary: dict[str, Any] = {
        "label_ratio": label_ratio,
        "labels": labels,
        "metric": metric,
        "methods": {},
    }
    for method in per_dataset.columns:
        entry = {
            "mean_auroc": float(frame[frame.method == method].auroc.mean()),
            "mean_auprc": float(frame[frame.method == method].auprc.mean()),
            "std_over_seeds": float(per_seed_mean.loc[method].std(ddof=0)),
            "seconds_total": float(frame[frame.method == method].seconds.sum()),
            "fit_seconds_total": float(frame[frame.method == method].fit_seconds.sum()),
        }
        if method != REFERENCE and REFERENCE in per_dataset.columns:
            entry |= paired(per_dataset[REFERENCE], per_dataset[method])
        summary["methods"][method] = entry
    summary["cost"] = cost_summary(outcomes)
    if split := by_test_anomalies(outcomes, metric):
        summary["by_test_anomalies"] = split
    if metric == "auprc" and (luck := best_peer_luck(outcomes)):
        summary["best_peer_luck"] = luck
    if metric == "auprc" and (split_luck := best_peer_split_luck(outcomes)):
        summary["best_peer_split_luck"] = split_luck
    return summary


def by_test_anomalies(outcomes: list[Outcome], metric: str) -> dict[str, Any]:
    """Mean ``metric`` per method over the sets with few test anomalies, and over the rest.

    Where a set's test rows hold one to nine anomalies, its AUPRC is decided by that many
    rows, and a choice made with hindsight of them (the oracle best peer) gains most
    there: the split shows how much of a gap lies in such sets. Empty when the run did not
    record the counts (journals written before they were).
    """
    frame = outcome_frame(outcomes)
    if "test_anomalies" not in frame or not (frame.test_anomalies > 0).all():
        return {}
    counts = frame.groupby("dataset").test_anomalies.mean()
    means = frame.pivot_table(index="dataset", columns="method", values=metric)
    groups = {
        f"fewer than {FEW_TEST_ANOMALIES}": counts < FEW_TEST_ANOMALIES,
        f"{FEW_TEST_ANOMALIES} or more": counts >= FEW_TEST_ANOMALIES,
    }
    return {
        name: {"datasets": int(chosen.sum()), "means": means[chosen].mean().to_dict()}
        for name, chosen in groups.items()
        if chosen.any()
    }


def table(outcomes: list[Outcome], summary: dict[str, Any]) -> str:
    """The quality table, the means by test anomalies and the best peer's luck (read from
    ``summary``, :func:`summarize`'s of these outcomes), then fit seconds beside CatBoost's."""
    quality = _quality_table(outcomes, summary["label_ratio"], summary["labels"])
    if split := summary.get("by_test_anomalies"):
        means = pd.DataFrame({name: group["means"] for name, group in split.items()}).T
        means.insert(0, "data sets", [group["datasets"] for group in split.values()])
        quality += "\n\nMean by test anomalies per set\n" + means.round(3).to_string()
    luck = [_luck_lines(summary["best_peer_luck"])] if "best_peer_luck" in summary else []
    if split_luck := summary.get("best_peer_split_luck"):
        luck.append(_split_luck_lines(split_luck))
    if luck:
        quality += "\n\n" + "\n".join(luck)
    return f"{quality}\n\n{cost_table(outcomes)}"


def _luck_lines(luck: dict[str, Any]) -> str:
    """The best peer's mean with and without the luck of picking it on the scored rows."""
    lines = [
        f"Best peer in hindsight {luck['hindsight_best_peer']:.3f}; luck of the pick on "
        f"the scored rows {luck['luck']:.3f} ({luck['resamples']} resamples of the test rows); "
        f"less the luck {luck['best_peer_less_luck']:.3f}"
    ]
    if "anomalyflow_above_hindsight_share" in luck:
        lines.append(
            f"AnomalyFlow's mean above the hindsight best peer's on "
            f"{luck['anomalyflow_above_hindsight_share']:.0%} of resamples, above the best "
            f"peers' on average on {luck['anomalyflow_above_best_on_average_share']:.0%}"
        )
    return "\n".join(lines)


def _split_luck_lines(luck: dict[str, Any]) -> str:
    """The best peer picked on half the seeds, where picked and on the other half."""
    half = luck["seeds_per_half"]
    lines = [
        f"Best peer picked on {half} seeds: {luck['hindsight_best_peer']:.3f} on them, "
        f"{luck['fresh_best_peer']:.3f} on {half} other seeds (luck of the split "
        f"{luck['luck']:.3f})"
    ]
    if "anomalyflow" in luck:
        lines.append(
            f"AnomalyFlow {luck['anomalyflow']:.3f}, less that best peer on fresh seeds "
            f"{luck['anomalyflow_less_fresh_best_peer']:+.3f} ({luck['anomalyflow_wins']} wins, "
            f"{luck['anomalyflow_losses']} losses, Wilcoxon p {luck['wilcoxon_p']:.2g})"
        )
    return "\n".join(lines)


def _quality_table(outcomes: list[Outcome], label_ratio: float, labels: int | None) -> str:
    """Per data set mean over seeds, then the mean row and seconds per method."""
    frame = outcome_frame(outcomes)
    metric = headline_metric(label_ratio, labels)
    pivot = frame.pivot_table(index="dataset", columns="method", values=metric)
    order = [REFERENCE, *sorted(c for c in pivot.columns if c != REFERENCE)]
    pivot = pivot[[c for c in order if c in pivot.columns]]
    pivot.loc["MEAN"] = pivot.mean()
    seconds = frame.pivot_table(index="method", values="seconds", aggfunc="sum")["seconds"]
    pivot.loc["seconds (total)"] = seconds.reindex(pivot.columns)
    words = budget_words(label_ratio, labels)
    return f"{metric.upper()} at {words}\n" + pivot.round(3).to_string()


def markdown_table(outcomes: list[Outcome], label_ratio: float, labels: int | None = None) -> str:
    """The same tables as GitHub markdown, for ``docs/benchmarks.md``."""
    lines = _quality_table(outcomes, label_ratio, labels).splitlines()[1:]
    cells = [line.split() for line in lines]
    header = ["dataset", *cells[0][1:]] if cells[0][0] == "method" else cells[0]
    rows = [c for c in cells[1:] if c and c[0] != "dataset"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if row[0] == "seconds":
            row = ["seconds (total)", *row[2:]]
        out.append("| " + " | ".join(row) + " |")
    out += ["", "Fit seconds (mean over seeds) and ratio to CatBoost:", ""]
    return "\n".join(out) + "\n" + markdown_cost_table(outcomes)


def plot(
    outcomes: list[Outcome], label_ratio: float, path: Path, labels: int | None = None
) -> None:
    """Per data set metric of every method (points) and the means (bars), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = outcome_frame(outcomes)
    metric = headline_metric(label_ratio, labels)
    pivot = frame.pivot_table(index="dataset", columns="method", values=metric)
    ours = [REFERENCE] if REFERENCE in pivot.columns else []  # absent: run without it
    methods = [*ours, *sorted(c for c in pivot.columns if c != REFERENCE)]
    figure, axis = plt.subplots(figsize=(max(6, 1.4 * len(methods)), 4.5))
    positions = np.arange(len(methods))
    axis.bar(positions, [pivot[m].mean() for m in methods], color="#9ecae1", label="mean")
    for i, method in enumerate(methods):
        jitter = np.linspace(-0.25, 0.25, len(pivot))
        axis.scatter(positions[i] + jitter, pivot[method], s=10, color="#08519c")
    axis.set_xticks(positions, methods, rotation=20, ha="right")
    axis.set_ylabel(metric.upper())
    axis.set_title(f"{metric.upper()} per data set, {budget_words(label_ratio, labels)}")
    axis.set_ylim(0, 1)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
