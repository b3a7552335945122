"""The promotion gate: absolute floors plus "not worse than production", judged with a
paired bootstrap on the same frozen holdout so noise does not churn the champion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from anomalyflow.evaluation.metrics import EvaluationReport
from anomalyflow.params import GateParams


@dataclass(frozen=True)
class RuleOutcome:
    """One rule of the policy: what was measured, against what, and the verdict."""

    rule: str
    value: float | None
    threshold: float
    passed: bool
    note: str = ""


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate may be registered for promotion, and why."""

    approved: bool
    rules: tuple[RuleOutcome, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the decision record."""
        return {"approved": self.approved, "rules": [asdict(r) for r in self.rules]}


@dataclass(frozen=True)
class PairedComparison:
    """Candidate minus production AUPRC on the same rows, with a bootstrap interval."""

    difference: float
    low: float
    high: float


def compare_on_holdout(
    labels: np.ndarray,
    candidate: np.ndarray,
    production: np.ndarray,
    samples: int,
    confidence: float,
    seed: int,
) -> PairedComparison:
    """Paired bootstrap of the AUPRC difference; rows are resampled once for both models."""
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(samples):
        rows = rng.integers(0, len(labels), len(labels))
        if labels[rows].min() == labels[rows].max():
            continue
        differences.append(
            average_precision_score(labels[rows], candidate[rows])
            - average_precision_score(labels[rows], production[rows])
        )
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(differences, [tail, 100.0 - tail])
    point = average_precision_score(labels, candidate) - average_precision_score(labels, production)
    return PairedComparison(float(point), float(low), float(high))


def apply_policy(
    candidate: EvaluationReport,
    comparison: PairedComparison | None,
    params: GateParams,
    no_baseline: str = "no production model to compare with",
) -> GateDecision:
    """Check the candidate against the floors and, if production exists, against it.

    ``no_baseline`` is the relative rule's note when there is no comparison: the caller
    knows why (the model name's first version, or a production of other features).

    The relative rule fails only when the candidate is worse beyond the tolerance with
    confidence: the whole bootstrap interval of the difference lies below ``-tolerance``.
    """
    rules = [
        RuleOutcome(
            "auprc_floor", candidate.auprc, params.min_auprc, candidate.auprc >= params.min_auprc
        ),
        RuleOutcome(
            "precision_at_alert_budget_floor",
            candidate.precision_at_alert_budget,
            params.min_precision_at_alert_budget,
            candidate.precision_at_alert_budget >= params.min_precision_at_alert_budget,
        ),
    ]
    if comparison is None:
        rules.append(
            RuleOutcome(
                "not_worse_than_production",
                None,
                -params.auprc_tolerance,
                True,
                no_baseline,
            )
        )
    else:
        rules.append(
            RuleOutcome(
                "not_worse_than_production",
                comparison.difference,
                -params.auprc_tolerance,
                comparison.high >= -params.auprc_tolerance,
                f"AUPRC difference {comparison.difference:+.4f}, interval "
                f"[{comparison.low:+.4f}, {comparison.high:+.4f}]",
            )
        )
    return GateDecision(all(r.passed for r in rules), tuple(rules))
