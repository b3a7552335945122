"""What each policy did in a replay, day by day, and the figures people compare them by."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from anomalyflow.detector import AnomalyDetector
from anomalyflow.evaluation.metrics import EvaluationReport, precision_at_top
from anomalyflow.pipeline.policy import TrainingNeed
from anomalyflow.pipeline.state import RunState

AFTER_DRIFT_FIGURES = ("auprc_after_drift", "precision_at_alert_budget_after_drift")


@dataclass(frozen=True)
class Model:
    """A detector with its holdout scores and report, computed once for every gate."""

    detector: AnomalyDetector
    holdout_scores: np.ndarray
    report: EvaluationReport


@dataclass
class DayOutcome:
    """One policy's production on one day's traffic, and its decision after the day."""

    day: int
    auprc: float
    precision_at_alert_budget: float
    trained: bool = False
    promoted: bool = False
    reason: str = ""


@dataclass
class Track:
    """One policy: its production, its run state, and every day it served."""

    name: str
    production: Model
    state: RunState
    retrains: int = 0
    promotions: int = 0
    days: list[DayOutcome] = field(default_factory=list)
    after_drift: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    alert_budget: float = 0.01

    def served(
        self, day: int, truth: np.ndarray, scores: np.ndarray, budget: float, drift_day: int
    ) -> None:
        """Production's scores on the day's rows, against the truth the replay knows."""
        self.alert_budget = budget
        auprc = float(average_precision_score(truth, scores)) if truth.any() else 0.0
        precision = precision_at_top(scores, truth, budget)
        self.days.append(DayOutcome(day, auprc, precision))
        if day >= drift_day:
            self.after_drift.append((truth, scores))

    def decided(self, need: TrainingNeed) -> None:
        """The day ended without training."""
        self.days[-1].reason = need.reason

    def trained(
        self, need: TrainingNeed, promoted: Model | None, now: float, digests: tuple[str, str]
    ) -> None:
        """The day ended with a training; ``promoted`` is the candidate when it passed."""
        window, training = digests
        self.state = replace(
            self.state, window_digest=window, trained_at=now, training_digest=training
        )
        self.retrains += 1
        today = self.days[-1]
        today.trained, today.reason = True, need.reason
        if promoted is not None and promoted is not self.production:
            self.production = promoted
            self.promotions += 1
            today.promoted = True

    def day_summary(self) -> str:
        """``name AUPRC/precision``, and what happened after the day."""
        today = self.days[-1]
        done = "promoted" if today.promoted else "trained, kept" if today.trained else "kept"
        return f"{self.name} {today.auprc:.3f}/{today.precision_at_alert_budget:.2f} ({done})"

    def figures(self) -> dict[str, Any]:
        """The JSON figures: counts, the pooled after-drift metrics, and every day."""
        after: dict[str, float | None] = dict.fromkeys(AFTER_DRIFT_FIGURES)
        if self.after_drift:
            truth = np.concatenate([t for t, _ in self.after_drift])
            scores = np.concatenate([s for _, s in self.after_drift])
            if 0 < truth.sum() < truth.size:  # AUPRC needs both classes
                after = {
                    "auprc_after_drift": float(average_precision_score(truth, scores)),
                    "precision_at_alert_budget_after_drift": precision_at_top(
                        scores, truth, self.alert_budget
                    ),
                }
        return {
            "retrains": self.retrains,
            "promotions": self.promotions,
            **after,
            "days": [asdict(day) for day in self.days],
        }


def replay_json(tracks: list[Track], drift_day: int, label_delay: int) -> dict[str, Any]:
    """``{"drift_day", "label_delay", "policies": {name: figures}}``."""
    return {
        "drift_day": drift_day,
        "label_delay": label_delay,
        "policies": {track.name: track.figures() for track in tracks},
    }
