"""Fit the decision threshold on scores, apart from the network.

Keeping the threshold a separate, refittable step means moving it (a new alert budget, a
new false-positive target) never means retraining. Scores are higher = more anomalous,
and a row is flagged when ``score >= threshold`` (see :func:`flag`), the same rule as
scikit-learn's ``precision_recall_curve`` and ``roc_curve``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import precision_recall_curve

from anomalyflow.params import ThresholdParams


def flag(scores: ArrayLike, threshold: float) -> NDArray[np.bool_]:
    """Flag the rows whose score reaches the threshold.

    The one place the comparison lives, so fitting, evaluation and serving never
    disagree on a row scored exactly at the threshold.

    Args:
        scores: Shape ``(n,)``, higher = more anomalous.
        threshold: From :func:`fit_threshold`.

    Returns:
        Shape ``(n,)``, True where ``score >= threshold``.
    """
    return np.asarray(scores) >= threshold


def fit_threshold(scores: ArrayLike, labels: ArrayLike | None, params: ThresholdParams) -> float:
    """Choose the threshold by ``params.method``.

    - ``alert_rate``: flags at most ``alert_rate`` of the rows (labels unused).
    - ``false_positive_rate``: flags at most ``false_positive_rate`` of the label-0 rows.
    - ``best_f1``: maximises F1 on the labels.

    The rates are caps: when tied scores straddle the cut, the threshold moves up past
    the tie rather than flag more than asked, so the realised share may be a little lower.

    Args:
        scores: Shape ``(n,)``, higher = more anomalous.
        labels: Shape ``(n,)`` of 0/1 (1 = anomaly), or None for ``alert_rate``.
        params: The ``threshold`` section of ``params.yaml``.

    Returns:
        The threshold, to be used with :func:`flag`.

    Raises:
        ValueError: Empty or non-finite scores, or a method that needs labels given
            none, labels not 0/1, no label-0 rows (``false_positive_rate``) or no
            label-1 rows (``best_f1``).
    """
    values = check_scores(scores)
    if params.method == "alert_rate":
        return _threshold_flagging_at_most(values, _floor_share(params.alert_rate, values.size))
    if labels is None:
        raise ValueError(f"threshold method '{params.method}' needs labels; none were given")
    truth = check_labels(labels, values.size)
    if params.method == "false_positive_rate":
        negatives = values[truth == 0]
        if negatives.size == 0:
            raise ValueError(
                "threshold method 'false_positive_rate' needs label-0 rows; all labels are 1"
            )
        allowed = _floor_share(params.false_positive_rate, negatives.size)
        return _threshold_flagging_at_most(negatives, allowed)
    if params.method == "best_f1":
        if not truth.any():
            raise ValueError("threshold method 'best_f1' needs at least one label-1 row")
        return _best_f1_threshold(values, truth)
    raise ValueError(f"unknown threshold method '{params.method}'")


PER_ROWS = 10_000  # alerts are counted per this many rows
LOW_RECALL_CEILING = 0.5  # below it, a rule that caps recall gets a warning


@dataclass(frozen=True)
class ThresholdImplication:
    """What a threshold rule means in alerts, and the recall it leaves reachable.

    Attributes:
        method: ``threshold.method``.
        anomaly_rate: share of label-1 rows the rule is judged against (the holdout's).
        alerts_per_10k: rows flagged per 10,000 (``alert_rate``); None where the scores
            decide (``false_positive_rate``, ``best_f1``).
        false_alerts_per_10k: normal rows flagged per 10,000 (``false_positive_rate``).
        recall_ceiling: the highest recall the rule allows; 1.0 where it sets no cap.
    """

    method: str
    anomaly_rate: float
    alerts_per_10k: float | None
    false_alerts_per_10k: float | None
    recall_ceiling: float

    @property
    def caps_recall(self) -> bool:
        """Whether the rule alone keeps recall below one half."""
        return self.recall_ceiling < LOW_RECALL_CEILING

    def lines(self) -> list[str]:
        """The implication in words; the last line is a warning when the rule caps recall."""
        rate = self.anomaly_rate
        holdout = (
            f"the holdout has {rate * PER_ROWS:,.0f} anomalies per {PER_ROWS:,} rows ({rate:.1%})"
        )
        if self.alerts_per_10k is not None:
            said = (
                f"threshold: alert_rate flags {self.alerts_per_10k:,.0f} of every {PER_ROWS:,} "
                f"rows; {holdout}, so recall can reach at most {self.recall_ceiling:.2f}"
            )
        elif self.false_alerts_per_10k is not None:
            said = (
                f"threshold: false_positive_rate flags about {self.false_alerts_per_10k:,.0f} "
                f"normal rows per {PER_ROWS:,} plus the anomalies it catches; {holdout}; "
                "no cap on recall"
            )
        else:
            said = (
                "threshold: best_f1 takes the score that maximises F1 on labeled rows, so the "
                f"alert count follows from the scores; {holdout}; no cap on recall"
            )
        if not self.caps_recall:
            return [said]
        return [
            said,
            f"warning: the threshold rule caps recall at {self.recall_ceiling:.2f}; raise "
            f"threshold.alert_rate toward the anomaly rate ({self.anomaly_rate:.3g}) or use "
            "method false_positive_rate or best_f1 (params.yaml explains them)",
        ]


def explain_threshold(params: ThresholdParams, anomaly_rate: float) -> ThresholdImplication:
    """What ``params``' rule implies where ``anomaly_rate`` of the rows are anomalies.

    ``alert_rate`` flags a fixed share of rows, so when anomalies are more common than
    that share, most of them cannot be flagged: recall is at most
    ``alert_rate / anomaly_rate``. The other two rules follow the labels and set no cap.

    Args:
        params: The ``threshold`` section of ``params.yaml``.
        anomaly_rate: Share of label-1 rows in ``[0, 1]``, e.g. the holdout's.

    Raises:
        ValueError: ``anomaly_rate`` outside ``[0, 1]``.
    """
    if not 0.0 <= anomaly_rate <= 1.0:
        raise ValueError(f"anomaly_rate must be in [0, 1], got {anomaly_rate}")
    alerts = false_alerts = None
    ceiling = 1.0
    if params.method == "alert_rate":
        alerts = params.alert_rate * PER_ROWS
        if anomaly_rate > 0:
            ceiling = min(1.0, params.alert_rate / anomaly_rate)
    elif params.method == "false_positive_rate":
        false_alerts = params.false_positive_rate * (1.0 - anomaly_rate) * PER_ROWS
    return ThresholdImplication(params.method, anomaly_rate, alerts, false_alerts, ceiling)


def check_scores(scores: ArrayLike) -> NDArray[np.float64]:
    """Return the scores as a float array, refusing what would silently mis-rank rows.

    Args:
        scores: Shape ``(n,)``.

    Returns:
        Shape ``(n,)``, float64.

    Raises:
        ValueError: Not one-dimensional, empty, or containing NaN or infinity.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {values.shape}")
    if values.size == 0:
        raise ValueError("scores are empty")
    if not np.isfinite(values).all():
        raise ValueError("scores contain NaN or infinite values")
    return values


def check_labels(labels: ArrayLike, rows: int) -> NDArray[np.int8]:
    """Return the labels as a 0/1 array matching the scores.

    Args:
        labels: Shape ``(rows,)``; bool, int or float, but only 0 and 1.
        rows: Number of scores the labels belong to.

    Returns:
        Shape ``(rows,)``, int8.

    Raises:
        ValueError: Wrong length or shape, or a value other than 0 and 1.
    """
    values = np.asarray(labels)
    if values.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {values.shape}")
    if values.size != rows:
        raise ValueError(f"got {values.size} labels for {rows} scores; lengths must match")
    bad = ~np.isin(values, (0, 1))
    if bad.any():
        found = np.unique(values[bad])[:5].tolist()
        raise ValueError(f"labels must be 0 or 1 (1 = anomaly); found {found}")
    return values.astype(np.int8)


def _floor_share(rate: float, rows: int) -> int:
    # Rounding first keeps 0.29 * 100 = 28.999999999999996 from flooring to 28.
    return math.floor(round(rate * rows, 9))


def _threshold_flagging_at_most(scores: NDArray[np.float64], count: int) -> float:
    """Lowest threshold that flags at most ``count`` of ``scores`` (shape ``(n,)``).

    Returns an observed score when one works, so the threshold reads naturally; when
    ``count`` is 0 or the top scores tie past the cut, the next float above the first
    unflagged score.
    """
    descending = np.sort(scores)[::-1]
    if count >= descending.size:
        return float(descending[-1])
    first_unflagged = descending[count]
    above = descending[:count][descending[:count] > first_unflagged]
    if above.size:
        return float(above[-1])
    return float(np.nextafter(first_unflagged, np.inf))


def _best_f1_threshold(scores: NDArray[np.float64], labels: NDArray[np.int8]) -> float:
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    # The last point (precision 1, recall 0) has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return float(thresholds[int(np.argmax(f1))])
