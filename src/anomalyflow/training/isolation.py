"""Fitting the label-free score's isolation half: scikit-learn's forest, read as tensors.

The forest is fitted on the scaled training rows with scikit-learn's defaults (100 trees
of 256 rows), read into an :class:`IsolationScore` and checked there: the tensors must
give scikit-learn's own scores. The blend's scales are measured on the training rows, as
the scorer's other halves are.
"""

from __future__ import annotations

import numpy as np
import torch

from anomalyflow.device import autocast
from anomalyflow.models.backbone import Backbone
from anomalyflow.models.isolation import IsolationScore
from anomalyflow.training.linear import centre_spread

SCALE_ROWS = 10_000  # training rows the check and the blend's scales are measured on
MIN_ROWS = 3  # fewer rows isolate in no splits: every row scores the same
_SCORE_BATCH = 4096


@torch.no_grad()
def fit_isolation_half(
    backbone: Backbone, rows: np.ndarray, weight: float, seed: int
) -> IsolationScore | None:
    """The isolation half for a pretrained ``backbone`` on scaled ``rows`` (None: too few)."""
    from sklearn.ensemble import IsolationForest

    if len(rows) < MIN_ROWS:
        return None

    forest = IsolationForest(random_state=seed, n_jobs=1).fit(rows)
    isolation = as_tensors(forest)
    sample = rows[np.random.default_rng(seed).permutation(len(rows))[:SCALE_ROWS]]
    batches = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32)).split(_SCORE_BATCH)
    own = torch.cat([isolation(batch) for batch in batches]).numpy().astype(np.float64)
    if not np.allclose(own, -forest.score_samples(sample), atol=1e-5):
        raise RuntimeError("the forest read from scikit-learn does not give its scores")
    device = next(backbone.parameters()).device
    with autocast(device):
        scores = [backbone.reconstruction_score(b.to(device)).float().cpu() for b in batches]
    reconstruction = torch.cat(scores).numpy().astype(np.float64)
    blend = [*centre_spread(reconstruction), *centre_spread(own), weight]
    isolation.blend_scales.copy_(torch.tensor(blend))
    return isolation


def as_tensors(forest: object) -> IsolationScore:
    """A fitted scikit-learn ``IsolationForest``'s trees as an :class:`IsolationScore`.

    Every tree sees every feature in order (``max_features=1.0``), so a node's feature
    index is a column of the rows.
    """
    trees = [estimator.tree_ for estimator in forest.estimators_]  # type: ignore[attr-defined]
    nodes = max(tree.node_count for tree in trees)
    depth = max(tree.max_depth for tree in trees)
    isolation = IsolationScore(len(trees), nodes, depth)
    for index, tree in enumerate(trees):
        first = index * nodes
        span = slice(first, first + tree.node_count)
        leaf = tree.children_left < 0
        isolation.features[span] = torch.from_numpy(np.where(leaf, 0, tree.feature))
        isolation.thresholds[span] = torch.from_numpy(np.where(leaf, 0.0, tree.threshold))
        own = np.arange(tree.node_count)
        isolation.left[span] = torch.from_numpy(first + np.where(leaf, own, tree.children_left))
        isolation.right[span] = torch.from_numpy(first + np.where(leaf, own, tree.children_right))
        lengths = _node_depths(tree) + expected_path_length(tree.n_node_samples)
        isolation.path_lengths[span] = torch.from_numpy(lengths)
        isolation.expected_lengths[span] = torch.from_numpy(_mean_below(tree, lengths))
    max_samples = forest.max_samples_  # type: ignore[attr-defined]
    isolation.normaliser.fill_(len(trees) * float(expected_path_length(np.array([max_samples]))[0]))
    return isolation


def expected_path_length(rows: np.ndarray) -> np.ndarray:
    """Expected splits to isolate one of ``rows`` rows (an unsuccessful search's depth)."""
    n = rows.astype(np.float64)
    bigger = np.maximum(n, 3.0)
    general = 2.0 * (np.log(bigger - 1.0) + np.euler_gamma) - 2.0 * (bigger - 1.0) / bigger
    return np.where(n <= 1, 0.0, np.where(n == 2, 1.0, general))


def _node_depths(tree: object) -> np.ndarray:
    """Each node's depth, the root at 0, from the children arrays."""
    left, right = tree.children_left, tree.children_right  # type: ignore[attr-defined]
    depths = np.zeros(len(left))
    for node in range(len(left)):  # children come after their parent
        if left[node] >= 0:
            depths[left[node]] = depths[right[node]] = depths[node] + 1
    return depths


def _mean_below(tree: object, lengths: np.ndarray) -> np.ndarray:
    """The training rows' mean path length through each node (a leaf's own at a leaf)."""
    left, right = tree.children_left, tree.children_right  # type: ignore[attr-defined]
    rows = tree.n_node_samples.astype(np.float64)  # type: ignore[attr-defined]
    mean = lengths.copy()
    for node in reversed(range(len(left))):  # children before their parent
        if left[node] >= 0:
            below = rows[left[node]] + rows[right[node]]
            mean[node] = (
                rows[left[node]] * mean[left[node]] + rows[right[node]] * mean[right[node]]
            ) / below
    return mean
