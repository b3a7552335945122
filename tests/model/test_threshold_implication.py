"""A threshold rule says what it implies: alerts per 10,000 rows and the recall it allows."""

from __future__ import annotations

import numpy as np
import pytest

from anomalyflow import AnomalyDetector
from anomalyflow.evaluation.threshold import explain_threshold
from anomalyflow.params import ThresholdParams
from tests.conftest import make_blobs


def test_an_alert_rate_below_the_anomaly_rate_caps_recall_and_says_so() -> None:
    # The medical data set: 7% anomalous, 1% of rows flagged.
    capped = explain_threshold(ThresholdParams(method="alert_rate", alert_rate=0.01), 0.07)
    assert capped.alerts_per_10k == pytest.approx(100)
    assert capped.recall_ceiling == pytest.approx(1 / 7)
    assert capped.caps_recall and len(capped.lines()) == 2  # the implication, then a warning

    roomy = explain_threshold(ThresholdParams(method="alert_rate", alert_rate=0.01), 0.005)
    assert roomy.recall_ceiling == 1.0 and not roomy.caps_recall and len(roomy.lines()) == 1


@pytest.mark.parametrize("method", ["false_positive_rate", "best_f1"])
def test_rules_that_follow_the_labels_set_no_cap(method: str) -> None:
    implied = explain_threshold(ThresholdParams(method=method), 0.07)  # type: ignore[arg-type]
    assert implied.recall_ceiling == 1.0 and not implied.caps_recall
    assert implied.alerts_per_10k is None
    if method == "false_positive_rate":
        assert implied.false_alerts_per_10k == pytest.approx(0.01 * 0.93 * 10_000)


def test_an_anomaly_rate_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="anomaly_rate"):
        explain_threshold(ThresholdParams(), 1.5)


def test_no_model_beats_the_ceiling_and_another_rule_lifts_it() -> None:
    x, y = make_blobs(rows=1200, anomaly_share=0.07, seed=3)
    detector = AnomalyDetector(
        hidden_dim=16, embedding_dim=8, pretrain_epochs=3, finetune_epochs=3, verbose=False
    ).fit(x, y)
    ceiling = explain_threshold(detector.resolved_settings().threshold, y.mean()).recall_ceiling

    def recall() -> float:
        return float(detector.predict(x)[y == 1].mean())

    assert recall() <= ceiling + 1e-9  # fitted on these rows: at most 1% of them flagged
    detector.set_params(threshold_method="best_f1").refit_threshold(x, y)
    assert recall() > 2 * ceiling
    assert np.isfinite(detector.threshold_)
