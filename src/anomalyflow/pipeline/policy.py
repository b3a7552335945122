"""The retraining policy: whether a run trains, decided from what it knows, nothing else.

Pure functions: no files, no clock, no Prefect, so every rule has a test of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from anomalyflow.drift.report import DriftResult
from anomalyflow.params import DriftParams
from anomalyflow.pipeline.state import RunState

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class TrainingNeed:
    """Whether this run should train, and the reason people will read."""

    train: bool
    reason: str


def nothing_changed(state: RunState, checked: tuple[str, ...], has_candidate: bool) -> bool:
    """True when the last run already checked this very batch with these params against
    this reference, and its candidate is in place: the run has nothing to do."""
    return has_candidate and state.checked == checked


def training_need(
    state: RunState,
    *,
    has_candidate: bool,
    training_digest: str,
    window_digest: str,
    drift: DriftResult,
    rules: DriftParams,
    now: float,
) -> TrainingNeed:
    """Train on the first run, on changed params, drift or new data; not in cooldown,
    unless the drift is severe (``drift.override_share`` of the features).

    ``window_digest`` is the training window's digest: new batches and late labels
    change it.
    """
    if state.trained_at is None or not has_candidate:
        return TrainingNeed(True, "no model trained yet")
    if state.training_digest != training_digest:
        return TrainingNeed(True, "training params changed since the last training")
    drifted = f"drift in {len(drift.drifted_columns)} columns ({drift.share_drifted:.0%})"
    hours = (now - state.trained_at) / SECONDS_PER_HOUR
    if hours < rules.cooldown_hours and not rules.ignore_cooldown:
        if drift.share_drifted >= rules.override_share:
            return TrainingNeed(True, f"severe {drifted} overrides the cooldown")
        cooldown = f"cooldown: last trained {hours:.1f} h ago (< {rules.cooldown_hours} h)"
        if drift.drift_detected:  # said, so nobody misses it while the cooldown holds
            cooldown += f"; {drifted}, below drift.override_share {rules.override_share:.0%}"
        return TrainingNeed(False, cooldown)
    if drift.drift_detected:
        return TrainingNeed(True, drifted)
    if state.window_digest != window_digest:
        return TrainingNeed(True, "new rows or labels in the training window")
    return TrainingNeed(False, "no drift and no new labels")
