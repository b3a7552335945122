"""The scorer's tree half: CatBoost's trees as tensors, and what they add."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from catboost import CatBoostClassifier
from sklearn.metrics import roc_auc_score

from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.training.trees import fit_tree_score


def _anomalies_in_a_band(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Anomalies whose first feature sits in a narrow band mid-range: no tail, no line."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, 5)).astype(np.float32)
    x[:, 3] = 1.0  # a constant column: CatBoost never splits on it
    y = (np.abs(x[:, 0] - 0.5) < 0.08).astype(np.int64)
    return x, y


def test_the_tensors_rank_new_rows_as_catboost_does() -> None:
    x, y = _anomalies_in_a_band()
    trees = fit_tree_score(x, np.zeros(len(x)), y, rounds=60, seed=3)
    catboost = CatBoostClassifier(
        iterations=60,
        random_seed=3,
        thread_count=torch.get_num_threads(),
        verbose=False,
        allow_writing_files=False,
    ).fit(x, y)

    new_rows = np.random.default_rng(1).normal(size=(500, 5))
    new_rows[:, 3] = 1.0
    with torch.no_grad():
        ours = trees(torch.from_numpy(new_rows)).numpy()  # float64 rows, as a user may pass
    theirs = catboost.predict(new_rows.astype(np.float32), prediction_type="RawFormulaVal")
    np.testing.assert_allclose(ours - ours.mean(), theirs - theirs.mean(), atol=1e-3)


@pytest.mark.parametrize("tree_rounds", [None, 200])
def test_a_band_inside_the_normal_range_is_found_with_the_trees(
    fast_settings: DetectorSettings, tree_rounds: int | None
) -> None:
    x, y = _anomalies_in_a_band(seed=2)
    labeled = np.zeros_like(y)
    labeled[np.flatnonzero(y == 1)[:20]] = 1  # 20 of about 100 anomalies carry a label
    finetune = replace(fast_settings.finetune, tree_rounds=tree_rounds)
    detector = AnomalyDetector(replace(fast_settings, finetune=finetune)).fit(x, labeled)

    unlabeled = labeled == 0
    auroc = roc_auc_score(y[unlabeled], detector.decision_function(x)[unlabeled])
    assert (detector.scorer_.trees is not None) == (tree_rounds is not None)  # type: ignore[union-attr]
    if tree_rounds is None:
        assert auroc < 0.9  # the network and the line alone miss much of the band
    else:
        assert auroc > 0.97


def test_each_rows_tree_contributions_add_up_to_its_tree_score() -> None:
    x, y = _anomalies_in_a_band(seed=4)
    trees = fit_tree_score(x, np.zeros(len(x)), y, rounds=60, seed=0)
    rows = torch.from_numpy(x[:300])
    with torch.no_grad():
        scores, contributions = trees(rows), trees.contributions(rows)
        mean_on_training_rows = trees.path_means[:, 0, 0].sum()
    torch.testing.assert_close(contributions.sum(dim=1), scores - mean_on_training_rows)
    assert contributions[:, 3].abs().max() == 0  # the constant column is never split on


def test_an_anomaly_in_the_band_is_explained_by_the_bands_feature(
    fast_settings: DetectorSettings,
) -> None:
    x, y = _anomalies_in_a_band(seed=5)
    labeled = np.zeros_like(y)
    labeled[np.flatnonzero(y == 1)[:20]] = 1
    finetune = replace(fast_settings.finetune, tree_rounds=200)
    detector = AnomalyDetector(replace(fast_settings, finetune=finetune)).fit(x, labeled)

    unlabeled_anomalies = np.flatnonzero((y == 1) & (labeled == 0))
    contributions = detector.feature_contributions(x[unlabeled_anomalies])
    assert (contributions.argmax(axis=1) == 0).mean() > 0.95  # 0.88 from gradients alone
