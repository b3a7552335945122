"""The labels decide how much the label-free reconstruction score counts after fine-tuning."""

from __future__ import annotations

import numpy as np
import torch

from anomalyflow.detector import AnomalyDetector, DetectorSettings
from tests.conftest import make_blobs


def _learned_weight(detector: AnomalyDetector, x: np.ndarray, labeled: np.ndarray) -> float:
    y = np.zeros(len(x), dtype=np.int64)
    y[labeled] = 1
    detector.finetune(x, y)
    assert detector.scorer_ is not None
    return float(torch.nn.functional.softplus(detector.scorer_.head.skip_weight))


def test_labels_the_reconstruction_score_misses_turn_its_weight_down(
    fast_settings: DetectorSettings,
) -> None:
    x, _ = make_blobs(rows=1500, seed=3)
    detector = AnomalyDetector(fast_settings).pretrain(x)
    order = np.argsort(detector.decision_function(x))
    flagged, ordinary = order[-5:], order[:5]  # the label-free score's top and bottom rows

    agreeing = _learned_weight(detector, x, flagged)
    disagreeing = _learned_weight(detector, x, ordinary)

    assert agreeing > 0.8  # starts at 1: labels it agrees with keep it
    assert disagreeing < 0.5 * agreeing
