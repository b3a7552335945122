"""The label-free score's isolation half: scikit-learn's forest as tensors, and what it adds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.training.isolation import as_tensors


def _anomalies_in_a_gap(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two normal clusters per feature and anomalies in the empty middle, near the median.

    Neither a distance from the median nor a reconstruction from independent features
    sees them; random splits cut them off from the clusters in a few steps.
    """
    rng = np.random.default_rng(seed)
    rows, features = 3000, 4
    x = rng.choice([-3.0, 3.0], size=(rows, features)) + rng.normal(0, 0.5, (rows, features))
    y = np.zeros(rows, dtype=np.int64)
    y[:40] = 1
    x[:40] = rng.normal(0, 0.4, (40, features))
    return x, y


def test_the_tensors_score_new_rows_as_scikit_learn_does() -> None:
    x, _ = _anomalies_in_a_gap()
    forest = IsolationForest(random_state=4, n_jobs=1).fit(x)
    new_rows = np.random.default_rng(1).normal(0, 4, size=(500, x.shape[1]))  # some far out
    with torch.no_grad():
        ours = as_tensors(forest)(torch.from_numpy(new_rows)).numpy()
    np.testing.assert_allclose(ours, -forest.score_samples(new_rows), atol=1e-5)


@pytest.mark.parametrize("isolation_weight", [None, 2.0])
def test_with_no_labels_anomalies_in_a_gap_are_found_with_the_isolation_half(
    fast_settings: DetectorSettings, isolation_weight: float | None, tmp_path: Path
) -> None:
    x, y = _anomalies_in_a_gap(seed=2)
    pretrain = replace(fast_settings.pretrain, isolation_weight=isolation_weight)
    detector = AnomalyDetector(replace(fast_settings, pretrain=pretrain), label_free=True).fit(x)

    scores = detector.decision_function(x)
    auroc = roc_auc_score(y, scores)
    assert (detector.isolation_ is not None) == (isolation_weight is not None)
    if isolation_weight is None:
        assert auroc < 0.8  # reconstruction alone ranks the gap's rows as typical
    else:
        assert auroc > 0.95
    detector.save(tmp_path / "model")
    loaded = AnomalyDetector.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.decision_function(x), scores, rtol=1e-5)


def test_fine_tuning_replaces_the_isolation_half(fast_settings: DetectorSettings) -> None:
    x, y = _anomalies_in_a_gap(seed=3)
    detector = AnomalyDetector(fast_settings).fit(x, y)
    assert detector.scorer_ is not None and detector.isolation_ is None


def test_contributions_add_up_to_the_score_less_the_typical_rows() -> None:
    x, _ = _anomalies_in_a_gap()
    isolation = as_tensors(IsolationForest(random_state=0, n_jobs=1).fit(x))
    rows = torch.from_numpy(np.random.default_rng(5).normal(0, 3, size=(300, x.shape[1])))
    with torch.no_grad():
        contributions = isolation.contributions(rows).double()
        mean_path = isolation.expected_lengths[isolation.roots].sum()
        typical = 2.0 ** (-mean_path / isolation.normaliser)  # the mean path's score
        expected = isolation(rows).double() - typical
    np.testing.assert_allclose(contributions.sum(dim=1), expected, atol=1e-5)


@pytest.mark.parametrize("isolation_weight", [None, 2.0])
def test_an_anomaly_alone_in_one_features_gap_is_explained_by_that_feature(
    fast_settings: DetectorSettings, isolation_weight: float | None
) -> None:
    x, y = _anomalies_in_a_gap(seed=4)
    x[y == 1, 1:] = np.random.default_rng(4).choice([-3.0, 3.0], size=(40, 3))  # typical
    pretrain = replace(fast_settings.pretrain, isolation_weight=isolation_weight)
    detector = AnomalyDetector(replace(fast_settings, pretrain=pretrain), label_free=True).fit(x)

    named = detector.feature_contributions(x[y == 1]).argmax(axis=1)
    if isolation_weight is None:
        assert (named == 0).mean() < 0.25  # gradients of the reconstruction miss the gap
    else:
        assert (named == 0).mean() > 0.75  # the isolation half's splits name it
