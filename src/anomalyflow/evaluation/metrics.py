"""Metrics of a scored, labelled set, and the JSON report people and gates read.

Beyond precision / recall / F1 at the fitted threshold, the report carries the
threshold-free AUROC and AUPRC (average precision) with a bootstrap interval, so a
small labelled set is not over-read, and the two operating points teams budget by:
precision within an alert budget, and recall at a tolerated false-positive rate.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from anomalyflow.atomic import write_json
from anomalyflow.evaluation.threshold import check_labels, check_scores, flag
from anomalyflow.params import EvaluationParams

# Bootstrap resamples drawn at once: bounds memory to a few (chunk, n) arrays.
_BOOTSTRAP_CHUNK = 25


@dataclass(frozen=True)
class EvaluationReport:
    """Everything measured on one evaluation set; plain numbers, so JSON-ready."""

    rows: int
    positives: int
    threshold: float
    precision: float  # at the fitted threshold; 0 when nothing is flagged
    recall: float
    f1: float
    auroc: float
    auprc: float  # average precision
    auprc_ci_low: float  # bootstrap percentile interval
    auprc_ci_high: float
    precision_at_alert_budget: float  # among the top ceil(alert_budget * rows) scores
    alert_budget: float
    recall_at_target_fpr: float  # best recall whose false-positive rate <= target
    target_false_positive_rate: float
    confusion_matrix: dict[str, int]  # keys tn, fp, fn, tp, at the fitted threshold

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable copy."""
        return dataclasses.asdict(self)


def evaluate(
    labels: ArrayLike,
    scores: ArrayLike,
    threshold: float,
    params: EvaluationParams,
    seed: int = 0,
) -> EvaluationReport:
    """Measure scores against labels.

    Args:
        labels: Shape ``(n,)`` of 0/1 (1 = anomaly); both classes must be present.
        scores: Shape ``(n,)``, higher = more anomalous.
        threshold: From ``fit_threshold``; rows are flagged by ``flag``.
        params: The ``evaluation`` section of ``params.yaml``.
        seed: Seeds the bootstrap, so a report is reproducible.

    Returns:
        The report.

    Raises:
        ValueError: Labels not 0/1, lengths that differ, a single class present or
            non-finite scores.
    """
    values = check_scores(scores)
    truth = check_labels(labels, values.size)
    rows, positives = int(values.size), int(truth.sum())
    if positives == 0 or positives == rows:
        missing = "label-1 (anomaly)" if positives == 0 else "label-0 (normal)"
        raise ValueError(f"evaluation needs both classes; there are no {missing} rows")

    flagged = flag(values, threshold)
    is_positive = truth == 1
    tp = int(np.count_nonzero(flagged & is_positive))
    fp = int(np.count_nonzero(flagged & ~is_positive))
    fn = positives - tp
    tn = rows - positives - fp

    auprc = float(average_precision_score(truth, values))
    ci_low, ci_high = _bootstrap_auprc_interval(
        values, truth, params.bootstrap_samples, params.confidence_level, seed
    )
    return EvaluationReport(
        rows=rows,
        positives=positives,
        threshold=float(threshold),
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / positives,
        f1=2 * tp / (2 * tp + fp + fn),
        auroc=float(roc_auc_score(truth, values)),
        auprc=auprc,
        auprc_ci_low=ci_low,
        auprc_ci_high=ci_high,
        precision_at_alert_budget=precision_at_top(values, truth, params.alert_budget),
        alert_budget=float(params.alert_budget),
        recall_at_target_fpr=_recall_at_fpr(values, truth, params.target_false_positive_rate),
        target_false_positive_rate=float(params.target_false_positive_rate),
        confusion_matrix={"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    )


def write_evaluation(report: EvaluationReport, path: Path) -> None:
    """Write the report as JSON, atomically.

    A temporary file in the same folder is renamed over ``path``, so a reader (a gate,
    DVC) sees the old report or the new one, never half a file.
    """
    write_json(Path(path), report.to_dict(), allow_nan=False)


def precision_at_top(scores: NDArray[np.float64], labels: NDArray[np.int8], budget: float) -> float:
    """Precision among the top ``ceil(budget * n)`` scores, shapes ``(n,)``.

    Rows tied at the cut are counted fractionally (the expectation over random
    tie-breaking), so the result does not depend on row order.
    """
    # Rounding first keeps 0.07 * 100 = 7.000000000000001 from ceiling to 8.
    top = max(1, math.ceil(round(budget * scores.size, 9)))
    cut = np.partition(scores, scores.size - top)[scores.size - top]
    above, tied = scores > cut, scores == cut
    from_tied = top - int(np.count_nonzero(above))
    hits = labels[above].sum() + from_tied * labels[tied].mean()
    return float(hits / top)


def _recall_at_fpr(scores: NDArray[np.float64], labels: NDArray[np.int8], target: float) -> float:
    false_positive_rate, true_positive_rate, _ = roc_curve(labels, scores, drop_intermediate=False)
    # The curve starts at (0, 0), so the selection is never empty.
    return float(true_positive_rate[false_positive_rate <= target].max())


def _bootstrap_auprc_interval(
    scores: NDArray[np.float64],
    labels: NDArray[np.int8],
    samples: int,
    confidence_level: float,
    seed: int,
) -> tuple[float, float]:
    """Percentile interval of average precision over resamples with replacement.

    Instead of re-sorting each resample, rows are sorted once and each resample becomes
    a count of how often each row was drawn, i.e. a weighting of the sorted rows.
    Resamples without a positive have no average precision and are skipped.
    """
    rng = np.random.default_rng(seed)
    rows = scores.size
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    group_ends = _tie_group_ends(sorted_scores)
    estimates = []
    for start in range(0, samples, _BOOTSTRAP_CHUNK):
        chunk = min(_BOOTSTRAP_CHUNK, samples - start)
        drawn = rng.integers(0, rows, size=(chunk, rows))
        offsets = np.arange(chunk)[:, None] * rows
        counts = np.bincount((drawn + offsets).ravel(), minlength=chunk * rows)
        weights = counts.reshape(chunk, rows)[:, order]
        estimates.append(_weighted_average_precision(weights, sorted_labels, group_ends))
    values = np.concatenate(estimates)
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError("no bootstrap resample contained a positive; too few positives")
    tail = (1.0 - confidence_level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def _tie_group_ends(sorted_scores: NDArray[np.float64]) -> NDArray[np.intp]:
    """Index of the last row of each run of equal scores in a sorted ``(n,)`` array."""
    changes = np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1])
    return np.append(changes, sorted_scores.size - 1)


def _weighted_average_precision(
    weights: NDArray[np.int64], sorted_labels: NDArray[np.int8], group_ends: NDArray[np.intp]
) -> NDArray[np.float64]:
    """Average precision of each weighting, as scikit-learn computes it.

    Args:
        weights: Shape ``(b, n)``, how often each row counts, rows sorted by score
            descending.
        sorted_labels: Shape ``(n,)``, 0/1 in the same order.
        group_ends: Shape ``(g,)``, last row of each run of tied scores: one threshold
            each.

    Returns:
        Shape ``(b,)``; NaN where a weighting has no positive.
    """
    # Precision only matters where recall moves: at the ends of tie groups holding a
    # positive. Positives are usually few, so cumulating only their columns is cheap.
    positive_rows = np.flatnonzero(sorted_labels)
    positive_groups = np.searchsorted(group_ends, positive_rows)
    last_in_group = np.append(positive_groups[1:] != positive_groups[:-1], True)
    true_positives = np.cumsum(weights[:, positive_rows], axis=1)[:, last_in_group]
    flagged = np.cumsum(weights, axis=1)[:, group_ends[positive_groups[last_in_group]]]
    precision = np.divide(true_positives, flagged, out=np.zeros(flagged.shape), where=flagged > 0)
    recall_gain = np.diff(true_positives, axis=1, prepend=0)
    total = true_positives[:, -1].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((recall_gain * precision).sum(axis=1) / total, dtype=np.float64)
