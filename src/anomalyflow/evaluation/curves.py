"""PR and ROC curves as small JSON tables: DVC plots them and the report draws them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from anomalyflow.atomic import write_json

_POINTS = 200  # curves are thinned to this many points: readable diffs, small files


def curve_points(labels: np.ndarray, scores: np.ndarray) -> dict[str, list[dict[str, float]]]:
    """``{"pr": [{recall, precision}], "roc": [{fpr, tpr}]}`` thinned to ~200 points each."""
    precision, recall, _ = precision_recall_curve(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores)
    return {
        "pr": [{"recall": float(r), "precision": float(p)} for r, p in _thin(recall, precision)],
        "roc": [{"fpr": float(f), "tpr": float(t)} for f, t in _thin(fpr, tpr)],
    }


def write_curves(labels: np.ndarray, scores: np.ndarray, folder: Path) -> None:
    """Write ``pr.json`` and ``roc.json`` into ``folder``."""
    for name, rows in curve_points(labels, scores).items():
        write_json(folder / f"{name}.json", rows)


def _thin(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
    keep = np.unique(np.linspace(0, len(x) - 1, min(len(x), _POINTS)).astype(int))
    return list(zip(x[keep].tolist(), y[keep].tolist(), strict=True))
