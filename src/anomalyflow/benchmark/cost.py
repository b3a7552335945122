"""What each method's fit costs, beside CatBoost's on the same rows in the same run.

Fit seconds are means over seeds per data set. A ratio above 1 means the method took that
many times CatBoost's fit time; the ratios only compare methods timed in one process on one
machine, as absolute seconds move with the machine and its load.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd

from anomalyflow.benchmark.protocol import REFERENCE, Outcome

BASELINE = "catboost"
PHASES = ("pretrain", "finetune", "threshold")
ALL = "all data sets"


def fit_seconds(outcomes: list[Outcome]) -> pd.DataFrame:
    """Mean fit seconds over seeds: one row per data set, one column per method.

    The last row, ``all data sets``, holds the sum over data sets, so its ratio is that of
    the total time a method spends beside CatBoost's.
    """
    frame = pd.DataFrame([asdict(o) for o in outcomes])
    seconds = frame.pivot_table(index="dataset", columns="method", values="fit_seconds")
    order = [REFERENCE, *sorted(c for c in seconds.columns if c != REFERENCE)]
    seconds = seconds[[c for c in order if c in seconds.columns]]
    seconds.loc[ALL] = seconds.sum()
    return seconds


def ratio_to_baseline(seconds: pd.DataFrame) -> pd.DataFrame | None:
    """Each fit time over CatBoost's on the same row; None when CatBoost did not run."""
    if BASELINE not in seconds.columns:
        return None
    return seconds.div(seconds[BASELINE], axis=0)


def phase_seconds(outcomes: list[Outcome], method: str = REFERENCE) -> pd.DataFrame:
    """``method``'s mean fit seconds per phase, the scoring of the test rows, and the rows.

    One row per data set; columns ``train_rows``, each phase, ``fit`` (the whole fit) and
    ``score_test``.
    """
    records = [
        {
            "dataset": o.dataset,
            "train_rows": o.train_rows,
            **{p: o.phases.get(p, 0.0) for p in PHASES},
            "fit": o.fit_seconds,
            "score_test": o.score_seconds,
        }
        for o in outcomes
        if o.method == method
    ]
    means = pd.DataFrame(records).groupby("dataset").mean()
    return means.astype({"train_rows": int})


def cost_summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Per data set: each method's fit seconds and ratio to CatBoost; AnomalyFlow's phases."""
    seconds = fit_seconds(outcomes)
    ratios = ratio_to_baseline(seconds)
    summary: dict[str, Any] = {"baseline": BASELINE, "datasets": {}}
    for dataset in seconds.index:
        summary["datasets"][dataset] = {
            method: {
                "fit_seconds": float(seconds.loc[dataset, method]),
                "ratio_to_catboost": None if ratios is None else float(ratios.loc[dataset, method]),
            }
            for method in seconds.columns
        }
    if any(o.method == REFERENCE for o in outcomes):
        phases = phase_seconds(outcomes)
        summary["anomalyflow_phases"] = {
            str(dataset): {k: float(v) for k, v in row.items()}
            for dataset, row in phases.iterrows()
        }
    return summary


def cost_table(outcomes: list[Outcome]) -> str:
    """Fit seconds per data set and method, each with its ratio to CatBoost, as text."""
    seconds = fit_seconds(outcomes)
    ratios = ratio_to_baseline(seconds)
    cells = seconds.map(lambda s: f"{s:.2f}")
    if ratios is not None:
        cells = cells + ratios.map(lambda r: f" ({r:.1f}x)")
    title = "FIT SECONDS (mean over seeds" + (", x CatBoost)" if ratios is not None else ")")
    phases = phase_seconds(outcomes).round(2) if REFERENCE in seconds.columns else None
    text = f"{title}\n{cells.to_string()}"
    if phases is not None:
        text += f"\n\nANOMALYFLOW FIT BY PHASE (seconds)\n{phases.to_string()}"
    return text


def markdown_cost_table(outcomes: list[Outcome]) -> str:
    """The fit seconds and ratios to CatBoost as a GitHub markdown table."""
    seconds = fit_seconds(outcomes)
    ratios = ratio_to_baseline(seconds)
    header = ["dataset", *seconds.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for dataset in seconds.index:
        row = [str(dataset)]
        for method in seconds.columns:
            cell = f"{seconds.loc[dataset, method]:.2f} s"
            if ratios is not None:
                cell += f" ({ratios.loc[dataset, method]:.1f}x)"
            row.append(cell)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
