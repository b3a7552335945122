"""The review page's plots as inline PNGs (data URIs): nothing to fetch, offline or not."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from anomalyflow.evaluation.curves import curve_points


@dataclass(frozen=True)
class ScoredModel:
    """One model's scores on the holdout, as the plots and the page name it."""

    name: str  # "candidate <version>" or "production <version>"
    scores: np.ndarray  # (rows,) raw anomaly scores, higher = more anomalous
    threshold: float


def curves_png(labels: np.ndarray, models: list[ScoredModel]) -> str:
    """Precision-recall and ROC curves of every model on shared axes."""
    plt = _pyplot()
    figure, (pr, roc) = plt.subplots(1, 2, figsize=(9, 3.6))
    for model in models:
        points = curve_points(labels, model.scores)
        pr.plot(
            [p["recall"] for p in points["pr"]],
            [p["precision"] for p in points["pr"]],
            label=model.name,
        )
        roc.plot([p["fpr"] for p in points["roc"]], [p["tpr"] for p in points["roc"]])
    roc.plot([0, 1], [0, 1], linestyle=":", color="grey")
    pr.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
    roc.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC")
    pr.legend(loc="lower left", fontsize="small")
    return _png(figure)


def histograms_png(labels: np.ndarray, models: list[ScoredModel]) -> str:
    """Each model's scores for normals and anomalies, one panel a model.

    Panels, not shared axes: two detectors' raw scores live on unrelated scales; what
    compares is how well each separates the classes around its own threshold.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(models), figsize=(9, 3.2), squeeze=False)
    for axis, model in zip(axes[0], models, strict=True):
        scores = model.scores
        bins = np.linspace(scores.min(), scores.max(), 60).tolist()
        axis.hist(scores[labels == 0], bins=bins, alpha=0.6, density=True, label="normal")
        axis.hist(scores[labels == 1], bins=bins, alpha=0.6, density=True, label="anomaly")
        axis.axvline(model.threshold, color="black", linestyle="--", label="threshold")
        axis.set(xlabel="anomaly score", ylabel="density", title=model.name)
        axis.legend(fontsize="small")
    return _png(figure)


def replay_png(replay: dict[str, Any]) -> str:
    """Each policy's production AUPRC and precision at the alert budget, day by day,
    from ``anomalyflow replay``'s figures; the drift day marked."""
    plt = _pyplot()
    figure, (auprc, precision) = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    for name, figures in replay["policies"].items():
        days = [d["day"] for d in figures["days"]]
        label = f"{name} ({figures['retrains']} retrains)"
        auprc.plot(days, [d["auprc"] for d in figures["days"]], marker=".", label=label)
        precision.plot(days, [d["precision_at_alert_budget"] for d in figures["days"]], marker=".")
    for axis in (auprc, precision):
        axis.axvline(replay["drift_day"] - 0.5, color="grey", linestyle="--")
        axis.set(xlabel="day", ylim=(0, 1.02))
    auprc.set(ylabel="AUPRC of that day's rows", title="Production AUPRC per day")
    precision.set(ylabel="precision", title="Precision at the alert budget per day")
    auprc.legend(loc="lower left", fontsize="small")
    return _png(figure)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure: Any) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
