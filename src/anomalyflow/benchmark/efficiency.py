"""Label efficiency: mean AUPRC against the count of labeled anomalies, from benchmark reports.

A fraud team thinks in confirmed cases ("we have 10"), so the curve's axis is ADGym's count
of labels: one ``anomalyflow benchmark --labels N`` report per point, and the no-label run
(``--label-ratio 0``) as the point at 0. Drawn: AnomalyFlow, CatBoost, the best deep peer
(DevNet or PReNet, whichever is higher over the points) and the per-data-set best peer,
in hindsight and as chosen on the other seeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from anomalyflow.atomic import atomic_path
from anomalyflow.benchmark.peers import BEST_PEER, HELD_OUT_BEST_PEER
from anomalyflow.errors import Refusal

DEEP_PEERS = ("devnet", "prenet")
DRAWN = ("anomalyflow", "catboost", BEST_PEER, HELD_OUT_BEST_PEER)


class ReportRefused(Refusal):
    """A file that is not a benchmark report the curve can use."""


class _MethodSummary(BaseModel):
    mean_auprc: float


class _Summary(BaseModel):
    label_ratio: float
    labels: int | None
    methods: dict[str, _MethodSummary]


class _Report(BaseModel):
    summary: _Summary


@dataclass(frozen=True)
class Curve:
    """One method's mean AUPRC at each count of labels it was run with."""

    method: str
    points: dict[int, float]


def read_points(paths: list[Path]) -> dict[int, dict[str, float]]:
    """Mean AUPRC per method, keyed by the count of labels of each report.

    Raises:
        ReportRefused: a file that is not a benchmark report, a ratio run other than the
            no-label one, or two reports at the same count.
    """
    points: dict[int, dict[str, float]] = {}
    for path in paths:
        try:
            summary = _Report.model_validate(json.loads(path.read_text())).summary
        except (OSError, ValueError) as error:
            raise ReportRefused(f"{path}: not a benchmark report ({_reason(error)})") from None
        if summary.labels is None and summary.label_ratio > 0:
            raise ReportRefused(
                f"{path}: summary.label_ratio is {summary.label_ratio}; the curve counts "
                "labels: use reports of --labels N (and --label-ratio 0 for no labels)"
            )
        count = summary.labels or 0
        if count in points:
            raise ReportRefused(f"{path}: a second report at {count} labels")
        points[count] = {name: m.mean_auprc for name, m in summary.methods.items()}
    return points


def _reason(error: Exception) -> str:
    """The first rule a report broke, with the field it names."""
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"
    return str(error).splitlines()[0]


def curves(points: dict[int, dict[str, float]]) -> list[Curve]:
    """AnomalyFlow, CatBoost, the best peer and the better deep peer, each where it ran."""
    shared = [p for p in points.values() if all(d in p for d in DEEP_PEERS)]
    deep = max(DEEP_PEERS, key=lambda d: sum(p[d] for p in shared)) if shared else None
    chosen = [*DRAWN, *([deep] if deep else [])]
    drawn = [
        Curve(name, {n: at[name] for n, at in sorted(points.items()) if name in at})
        for name in chosen
    ]
    return [curve for curve in drawn if curve.points]


def plot_curves(drawn: list[Curve], path: Path) -> None:
    """Mean AUPRC against labeled anomalies, one line per method, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    for curve in drawn:
        style = "--" if curve.method in (BEST_PEER, HELD_OUT_BEST_PEER) else "-"
        counts = list(curve.points)
        axis.plot(counts, list(curve.points.values()), style, marker="o", label=curve.method)
    axis.set_xlabel("labeled anomalies in the train split")
    axis.set_ylabel("mean AUPRC")
    axis.set_title("Label efficiency (mean over data sets and seeds)")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as partial:
        figure.savefig(partial, dpi=120, format="png")
    plt.close(figure)
