"""The promotion gate accepts a better model, rejects a clearly worse one, ignores noise."""

from __future__ import annotations

import numpy as np

from anomalyflow.evaluation.gates import apply_policy, compare_on_holdout
from anomalyflow.evaluation.metrics import evaluate
from anomalyflow.params import EvaluationParams, GateParams


def _holdout(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(5000) < 0.03).astype(np.int64)
    good = labels * 2.5 + rng.normal(size=5000)
    weak = labels * 0.8 + rng.normal(size=5000)
    good_twin = good + rng.normal(scale=0.01, size=5000)
    return labels, good, weak, good_twin


def _decide(labels: np.ndarray, candidate: np.ndarray, production: np.ndarray | None):  # type: ignore[no-untyped-def]
    report = evaluate(
        labels,
        candidate,
        float(np.quantile(candidate, 0.99)),
        EvaluationParams(bootstrap_samples=20),
    )
    comparison = (
        None
        if production is None
        else compare_on_holdout(labels, candidate, production, samples=100, confidence=0.95, seed=0)
    )
    return apply_policy(report, comparison, GateParams())


def test_worse_candidate_is_rejected_and_better_one_accepted() -> None:
    labels, good, weak, _ = _holdout()
    rejected = _decide(labels, weak, production=good)
    accepted = _decide(labels, good, production=weak)

    assert not rejected.approved
    failed = [r.rule for r in rejected.rules if not r.passed]
    assert "not_worse_than_production" in failed
    assert accepted.approved
    assert all(r.passed for r in accepted.rules)


def test_noise_does_not_churn_the_champion() -> None:
    labels, good, _, good_twin = _holdout()
    assert _decide(labels, good_twin, production=good).approved


def test_first_model_has_no_production_and_says_so() -> None:
    labels, good, _, _ = _holdout()
    decision = _decide(labels, good, production=None)
    relative = next(r for r in decision.rules if r.rule == "not_worse_than_production")
    assert decision.approved and relative.value is None
    assert "no production model" in relative.note
    assert decision.to_dict()["rules"][0]["rule"] == "auprc_floor"


def test_floor_rejects_a_useless_model() -> None:
    labels, _, _, _ = _holdout()
    noise = np.random.default_rng(1).normal(size=len(labels))
    decision = _decide(labels, noise, production=None)
    assert not decision.approved
    assert not next(r for r in decision.rules if r.rule == "auprc_floor").passed
