"""The scorer's linear half: it learns a line from a few labels, and its blend is fair."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.training.linear import fit_linear_score
from tests.conftest import make_blobs


def _one_feature_marks_the_anomalies(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Normal rows, and anomalies whose first feature sits beyond the normal range."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, 5)).astype(np.float32)
    y = np.zeros(2000, dtype=np.int64)
    y[:40] = 1
    x[:40, 0] += 4.0
    return x, y


def test_three_labels_teach_the_line_that_finds_the_unlabeled_anomalies() -> None:
    x, y = _one_feature_marks_the_anomalies()
    labeled = np.zeros_like(y)
    labeled[:3] = 1  # 3 of the 40 anomalies carry a label
    no_score = np.zeros(len(x))

    model = fit_linear_score(x, no_score, no_score, labeled, c=0.01)
    with torch.no_grad():
        logits = model(torch.from_numpy(x), torch.from_numpy(no_score).float()).numpy()

    unlabeled = labeled == 0
    assert roc_auc_score(y[unlabeled], logits[unlabeled]) > 0.99
    weights = model.linear.weight[0, :5].detach().numpy()
    assert weights.argmax() == 0 and weights[0] > 2 * np.abs(weights[1:]).max()


def test_the_blend_does_not_depend_on_the_network_logits_scale() -> None:
    x, y = _one_feature_marks_the_anomalies(seed=1)
    labeled = np.zeros_like(y)
    labeled[:3] = 1
    no_score = torch.zeros(len(x))
    network = np.random.default_rng(2).normal(size=len(x))
    rescaled = 1000.0 * network + 5.0  # same ranking, another scale

    blended = fit_linear_score(x, no_score.numpy(), network, labeled, c=0.01).blend(
        torch.from_numpy(network).float(), torch.from_numpy(x), no_score
    )
    blended_rescaled = fit_linear_score(x, no_score.numpy(), rescaled, labeled, c=0.01).blend(
        torch.from_numpy(rescaled).float(), torch.from_numpy(x), no_score
    )
    torch.testing.assert_close(blended, blended_rescaled, rtol=1e-4, atol=1e-3)
    assert abs(float(blended.median())) < 1.0  # both halves centred on the training rows


def test_without_the_linear_and_tree_halves_the_network_alone_scores(
    fast_settings: DetectorSettings,
) -> None:
    x, y = make_blobs(rows=800)
    labeled = np.zeros_like(y)
    labeled[np.flatnonzero(y == 1)[:8]] = 1
    finetune = replace(fast_settings.finetune, linear_c=None, tree_rounds=None)
    settings = replace(fast_settings, finetune=finetune)
    detector = AnomalyDetector(settings).fit(x, labeled)

    assert detector.scorer_ is not None and detector.scorer_.linear is None
    scaled = torch.from_numpy(detector.scaler_.transform(x))  # type: ignore[union-attr]
    with torch.no_grad():
        network = detector.scorer_.logits(scaled, detector.scorer_.reconstruction_score(scaled))
    np.testing.assert_allclose(detector.decision_function(x), network.numpy(), rtol=1e-5)
