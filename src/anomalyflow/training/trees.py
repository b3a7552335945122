"""Fitting the scorer's tree half: CatBoost on the few labels, read back as tensors.

CatBoost, with its defaults, is the strongest single peer with ten labeled anomalies
(docs/benchmarks.md), and its ordered boosting overfits a handful of labels less than
other boosters. Like the other halves it treats unlabeled rows as negatives. The fitted
model is read from CatBoost's JSON export into a :class:`TreeScore`, and checked there:
the tensors must give CatBoost's own scores on the training rows.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anomalyflow.device import autocast
from anomalyflow.models.scorer import ScoringModel
from anomalyflow.models.trees import TreeScore
from anomalyflow.training.linear import centre_spread

_SCORE_BATCH = 4096


@torch.no_grad()
def fit_tree_half(
    scorer: ScoringModel, data: torch.Tensor, y: np.ndarray, rounds: int, seed: int
) -> TreeScore:
    """The tree half for a trained ``scorer`` (network and linear half) on scaled rows."""
    scorer.eval()
    with autocast(data.device):
        chunks = [scorer(chunk).float().cpu() for chunk in data.split(_SCORE_BATCH)]
    score = torch.cat(chunks).numpy().astype(np.float64)
    return fit_tree_score(data.cpu().numpy(), score, y, rounds, seed)


def fit_tree_score(
    x: np.ndarray, score: np.ndarray, y: np.ndarray, rounds: int, seed: int
) -> TreeScore:
    """Boosted trees for ``y`` on scaled rows, scaled to be added to ``score``.

    Args:
        x: scaled rows ``(rows, features)``, as the scorer sees them.
        score: the other halves' score per row ``(rows,)``: with the trees' score on the
            same rows, it sets the scales the two are summed on.
        y: 1 for labeled anomalies, 0 for the rest.
        rounds: boosting rounds (trees).
        seed: CatBoost's seed: the same rows and seed give the same trees.
    """
    from catboost import CatBoostClassifier

    rows = np.ascontiguousarray(x, dtype=np.float32)
    model = CatBoostClassifier(
        iterations=rounds,
        random_seed=seed,
        thread_count=torch.get_num_threads(),
        verbose=False,
        allow_writing_files=False,
    ).fit(rows, y)
    trees = _as_tensors(_exported(model))
    with torch.no_grad():  # in chunks: a chunk's (rows, trees) index tensors are its memory
        chunks = [trees(chunk) for chunk in torch.from_numpy(rows).split(_SCORE_BATCH)]
    own = torch.cat(chunks).numpy()
    expected = model.predict(rows, prediction_type="RawFormulaVal")
    # The tensors leave out CatBoost's bias, a constant: compare the centred scores.
    if not np.allclose(own - own.mean(), expected - expected.mean(), atol=1e-3):
        raise RuntimeError("the trees read from CatBoost do not give CatBoost's scores")
    trees.scales.copy_(torch.tensor([*centre_spread(score), *centre_spread(own)]))
    return trees


def _exported(model: Any) -> dict[str, Any]:
    """CatBoost's JSON description of a fitted model."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.json"
        model.save_model(str(path), format="json")
        exported: dict[str, Any] = json.loads(path.read_text())
    return exported


def _as_tensors(exported: dict[str, Any]) -> TreeScore:
    """The oblivious trees of CatBoost's JSON as a :class:`TreeScore`.

    Split ``level`` of a tree sets bit ``level`` of the leaf index when the row's feature
    is above the border. The model's scale is folded into the leaves; its bias, a
    constant, does not change the ranking and is left out.
    """
    trees = exported["oblivious_trees"]
    depth = max(len(tree["splits"]) for tree in trees)
    model = TreeScore(len(trees), depth)
    scale = float(exported.get("scale_and_bias", [1.0, [0.0]])[0])
    leaves = torch.zeros(len(trees), 2**depth)
    with torch.no_grad():
        for number, tree in enumerate(trees):
            for level, split in enumerate(tree["splits"]):
                model.features[number, level] = int(split["float_feature_index"])
                model.borders[number, level] = float(split["border"])
            values = np.asarray(tree["leaf_values"], dtype=np.float64) * scale
            leaves[number, : len(values)] = torch.from_numpy(values).float()
            weights = np.asarray(tree["leaf_weights"], dtype=np.float64)
            model.path_means[number] = torch.from_numpy(_path_means(values, weights, depth))
        model.leaves.copy_(leaves.reshape(-1))
    return model


def _path_means(values: np.ndarray, weights: np.ndarray, depth: int) -> np.ndarray:
    """Mean leaf value, weighted by training rows, per count of known levels and their bits.

    Row ``k`` holds the mean over the leaves whose lowest ``k`` index bits are each
    column's; an empty node takes the plain mean of its leaves.
    """
    means = np.zeros((depth + 1, 2**depth))
    leaf = np.arange(len(values))
    weights = weights + 1e-12 * (weights.sum() + 1)  # an empty node: the plain mean
    for known in range(depth + 1):
        node = leaf % 2**known
        total = np.bincount(node, weights * values, minlength=2**depth)
        count = np.bincount(node, weights, minlength=2**depth)
        means[known] = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return means
