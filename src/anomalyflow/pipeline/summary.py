"""What a retraining run tells people: the outcome, metrics beside production's, timings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from anomalyflow.evaluation.metrics import EvaluationReport

SUMMARY_METRICS = ("auprc", "auroc", "precision", "recall", "precision_at_alert_budget")


@dataclass
class Lap:
    """One timed step; its name may change once the step knows what it did."""

    name: str


class Stopwatch:
    """Seconds per step, in the order the steps ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def lap(self, name: str) -> Iterator[Lap]:
        """Time the block under ``name`` (or the name the block gives the lap)."""
        lap, started = Lap(name), time.perf_counter()
        yield lap
        self.seconds[lap.name] = time.perf_counter() - started


@dataclass
class RunSummary:
    """What the terminal summary and the Prefect artifacts show."""

    outcome: str  # promoted | registered | rejected-by-gate | skipped
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)
    production_metrics: dict[str, float] | None = None
    registered: str | None = None
    reports: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. what the threshold rule implies

    def lines(self) -> list[str]:
        """The console summary: decision, metrics beside production's, times, reports."""
        lines = [f"\nDecision: {self.outcome} ({self.reason})", *self.notes]
        if self.metrics:
            lines.append(f"  {'metric':<28}{'candidate':>10}{'production':>12}")
            for key, value in self.metrics.items():
                production = (self.production_metrics or {}).get(key)
                shown = f"{production:.4f}" if production is not None else "none yet"
                lines.append(f"  {key:<28}{value:>10.4f}{shown:>12}")
        if self.registered:
            lines.append(
                f"Registered version {self.registered} in the BentoML model store "
                "(`anomalyflow models` lists every version)"
            )
        times = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        lines.append(f"Time per step: {times}")
        lines += [f"Report ({name}): {path}" for name, path in self.reports.items()]
        return lines


def summary_metrics(report: EvaluationReport | None) -> dict[str, float] | None:
    """The metrics the summary shows, from a full evaluation report."""
    if report is None:
        return None
    return {key: float(getattr(report, key)) for key in SUMMARY_METRICS}
