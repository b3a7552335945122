"""The retraining policy alone: inputs in, decision out; no files, no Prefect, no DVC."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from anomalyflow.drift.report import DriftResult
from anomalyflow.params import DriftParams
from anomalyflow.pipeline.policy import nothing_changed, training_need
from anomalyflow.pipeline.state import RunState

NOW = 1_800_000_000.0
HOUR = 3600.0
RULES = DriftParams(cooldown_hours=24.0)
TRAINED = RunState(
    checked=("batch-a", "params-a", "reference-a"),
    window_digest="batch-a",
    trained_at=NOW - 48 * HOUR,
    training_digest="params-a",
)


def _drift(detected: bool, share: float = 0.35) -> DriftResult:
    columns = ("amount", "hour") if detected else ()
    return DriftResult(
        columns=(),
        share_drifted=share if detected else 0.0,
        score_drift=None,
        label_drift=None,
        drift_detected=detected,
        html=Path("drift.html"),
        json=Path("drift.json"),
        drifted_columns=columns,
    )


def _need(
    state: RunState = TRAINED,
    *,
    batch: str = "batch-a",
    params: str = "params-a",
    drift: bool = False,
    share: float = 0.35,
    rules: DriftParams = RULES,
    has_candidate: bool = True,
) -> bool:
    return training_need(
        state,
        has_candidate=has_candidate,
        training_digest=params,
        window_digest=batch,
        drift=_drift(drift, share),
        rules=rules,
        now=NOW,
    ).train


def test_the_first_run_trains() -> None:
    assert _need(RunState())
    assert _need(has_candidate=False)  # a run stopped before it saved a candidate


def test_changed_params_train_even_in_cooldown() -> None:
    recent = replace(TRAINED, trained_at=NOW - HOUR)
    assert _need(recent, params="params-b")


@pytest.mark.parametrize("drift", [False, True])
def test_cooldown_holds_back_new_labels_and_drift(drift: bool) -> None:
    recent = replace(TRAINED, trained_at=NOW - HOUR)
    assert not _need(recent, batch="batch-b", drift=drift)


def test_severe_drift_overrides_the_cooldown_and_mild_drift_is_named() -> None:
    """A third of the features drifting during cooldown was once skipped in silence."""
    recent = replace(TRAINED, trained_at=NOW - HOUR)
    assert _need(recent, drift=True, share=0.5)  # override_share 0.5 by default
    mild = training_need(
        recent,
        has_candidate=True,
        training_digest="params-a",
        window_digest="batch-a",
        drift=_drift(True, 0.35),
        rules=RULES,
        now=NOW,
    )
    assert not mild.train and "drift" in mild.reason


def test_ignore_cooldown_lets_a_manual_run_train() -> None:
    recent = replace(TRAINED, trained_at=NOW - HOUR)
    assert _need(recent, batch="batch-b", rules=replace(RULES, ignore_cooldown=True))


def test_after_cooldown_drift_or_new_labels_train() -> None:
    assert _need(drift=True)
    assert _need(batch="batch-b")


def test_after_cooldown_the_same_batch_without_drift_does_not_train() -> None:
    assert not _need()


def test_the_cooldown_ends_exactly_at_its_hours() -> None:
    at_end = replace(TRAINED, trained_at=NOW - 24 * HOUR)
    assert _need(at_end, batch="batch-b")


def test_nothing_changed_needs_the_same_key_and_a_candidate() -> None:
    key = ("batch-a", "params-a", "reference-a")
    assert nothing_changed(TRAINED, key, has_candidate=True)
    assert not nothing_changed(TRAINED, key, has_candidate=False)
    assert not nothing_changed(TRAINED, ("batch-a", "params-a", "reference-b"), True)
    assert not nothing_changed(RunState(), key, has_candidate=True)
