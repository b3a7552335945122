"""The benchmark reports each method's fit seconds beside CatBoost's, from the same run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from anomalyflow.benchmark import report
from anomalyflow.benchmark.cost import BASELINE, PHASES, cost_summary, fit_seconds
from anomalyflow.benchmark.protocol import (
    Budget,
    Outcome,
    anomalyflow_method,
    catboost,
    isolation_forest,
    make_split,
    run_unit,
)
from anomalyflow.detector import AnomalyDetector, DetectorSettings
from tests.conftest import make_blobs


@pytest.fixture
def tiny_settings(fast_settings: DetectorSettings) -> DetectorSettings:
    return replace(
        fast_settings,
        pretrain=replace(fast_settings.pretrain, max_epochs=2, max_steps=10),
        finetune=replace(fast_settings.finetune, frozen_epochs=1, max_epochs=2, max_steps=10),
    )


@pytest.fixture
def tiny_run(tmp_path: Path, tiny_settings: DetectorSettings) -> list[Outcome]:
    x, y = make_blobs(rows=600, features=4, anomaly_share=0.1)
    path = tmp_path / "blobs.npz"
    np.savez(path, X=x, y=y)
    chosen = {
        "anomalyflow": anomalyflow_method(tiny_settings, pretrained=True),
        "isolation_forest": isolation_forest,
        BASELINE: catboost,
    }
    return run_unit(path, 0, chosen, Budget(0.2, None, row_cap=10_000, test_size=0.3))


def test_every_outcome_has_positive_fit_and_score_seconds(tiny_run: list[Outcome]) -> None:
    assert {o.method for o in tiny_run} == {"anomalyflow", "isolation_forest", BASELINE}
    for outcome in tiny_run:
        assert outcome.fit_seconds > 0 and outcome.score_seconds > 0
        assert outcome.seconds == pytest.approx(outcome.fit_seconds + outcome.score_seconds)
        assert outcome.train_rows == 420
    ours = next(o for o in tiny_run if o.method == "anomalyflow")
    assert set(ours.phases) == set(PHASES)
    assert all(s > 0 for s in ours.phases.values())
    assert sum(ours.phases.values()) <= ours.fit_seconds


def test_summary_json_and_tables_carry_seconds_and_ratio_to_catboost(
    tiny_run: list[Outcome],
) -> None:
    summary = report.summarize(tiny_run, label_ratio=0.2)
    per_method = summary["cost"]["datasets"]["blobs"]
    for method, entry in per_method.items():
        assert entry["fit_seconds"] > 0 and entry["ratio_to_catboost"] > 0, method
    assert per_method[BASELINE]["ratio_to_catboost"] == pytest.approx(1.0)
    assert summary["cost"]["anomalyflow_phases"]["blobs"]["pretrain"] > 0
    assert summary["methods"]["anomalyflow"]["fit_seconds_total"] > 0
    assert "x)" in report.table(tiny_run, summary)
    assert "x)" in report.markdown_table(tiny_run, 0.2).splitlines()[-1]


def test_ratio_is_absent_without_catboost() -> None:
    outcomes = [
        Outcome("a", 0, "anomalyflow", 0.9, 0.5, 3.0, 2.0, 1.0, 100, {"pretrain": 1.5}),
        Outcome("a", 0, "ecod", 0.8, 0.4, 0.2, 0.1, 0.1, 100),
    ]
    summary = cost_summary(outcomes)
    assert summary["datasets"]["a"]["ecod"] == {"fit_seconds": 0.1, "ratio_to_catboost": None}
    assert fit_seconds(outcomes).loc["all data sets", "anomalyflow"] == 2.0


def test_timed_phases_score_as_a_plain_fit(tiny_settings: DetectorSettings) -> None:
    """The benchmark times fit's steps one by one; the detector must be the same as fit's."""
    x, y = make_blobs(rows=600, features=4, anomaly_share=0.1)
    split = make_split(x, y, 0.2, 0, 10_000, 0.3)
    phased = anomalyflow_method(tiny_settings, pretrained=True)(split.x_train, split.y_partial, 0)
    seeded = replace(tiny_settings, runtime=replace(tiny_settings.runtime, seed=0))
    whole = AnomalyDetector(seeded).fit(split.x_train, split.y_partial)
    np.testing.assert_allclose(
        phased.score(split.x_test), whole.decision_function(split.x_test), rtol=1e-5
    )
