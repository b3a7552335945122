"""The isolation half of the label-free score: an isolation forest held as tensors.

The reconstruction score ranks best the rows whose values do not fit together; rows that
are extreme on one or two features it ranks less sharply, and on such sets an isolation
forest, which counts the random splits needed to cut a row off, finds them first
(docs/benchmarks.md, "Label ratio 0"). With no labels the detector adds the two. The
forest is fitted by scikit-learn (``training/isolation.py``) and read into buffers, so it
runs inside the torch module: saved and checksummed with the network, exported to ONNX
with it, with no pickled model to load.
"""

from __future__ import annotations

import torch
from torch import nn


class IsolationScore(nn.Module):
    """Isolation forest score of scaled rows, and the weights of its blend.

    Buffers, for ``trees`` trees of at most ``nodes`` nodes each, flat (tree after tree):
    ``features`` and ``thresholds`` of every split node, the flat index of its ``left``
    and ``right`` child (a leaf is its own child, so a row that reaches a leaf stays
    there), ``path_lengths`` (a leaf's depth plus the expected depth still to go among the
    training rows it holds), ``expected_lengths`` (the mean path length of the training
    rows through each node, for explanations), ``roots`` (each tree's first node),
    ``normaliser`` (the number of trees times the expected path length of the forest's
    subsample) and ``blend_scales`` ``(reconstruction centre, spread, isolation centre,
    spread, isolation weight)``.
    """

    features: torch.Tensor
    thresholds: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor
    path_lengths: torch.Tensor
    expected_lengths: torch.Tensor
    roots: torch.Tensor
    normaliser: torch.Tensor
    blend_scales: torch.Tensor

    def __init__(self, trees: int, nodes: int, depth: int) -> None:
        super().__init__()
        self.depth = depth
        flat = trees * nodes
        self.register_buffer("features", torch.zeros(flat, dtype=torch.int64))
        self.register_buffer("thresholds", torch.zeros(flat, dtype=torch.float64))
        self.register_buffer("left", torch.arange(flat))
        self.register_buffer("right", torch.arange(flat))
        self.register_buffer("path_lengths", torch.zeros(flat, dtype=torch.float64))
        self.register_buffer("expected_lengths", torch.zeros(flat, dtype=torch.float64))
        self.register_buffer("roots", torch.arange(trees) * nodes)
        self.register_buffer("normaliser", torch.ones((), dtype=torch.float64))
        self.register_buffer("levels", torch.zeros(depth))  # its length saves the depth
        self.register_buffer("blend_scales", torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score in (0, 1] per row ``(batch,)``, higher = isolated in fewer splits.

        Values are compared as scikit-learn compares them: the row in float32, the
        threshold in float64, so a row reaches the leaf it would there.
        """
        rows = x.float().double()
        node = self.roots.expand(x.shape[0], -1)  # (batch, trees)
        for _ in range(self.depth):
            node = self._step(rows, node)
        return self._score(self.path_lengths[node].sum(dim=1)).float()

    def contributions(self, x: torch.Tensor) -> torch.Tensor:
        """How much each feature moves each row's isolation score, ``(batch, features)``.

        Each split on a row's path is credited with the change it makes in the expected
        path length (Saabas' attribution, as for the tree half); the credits are carried
        onto the score by the slope between the row's path length and the training rows'
        mean, so a row's contributions add up to its score less that mean path's score.
        """
        rows = x.float().double()
        node = self.roots.expand(x.shape[0], -1)
        credit = torch.zeros_like(rows)
        for _ in range(self.depth):
            child = self._step(rows, node)
            moved = self.expected_lengths[child] - self.expected_lengths[node]
            credit.scatter_add_(1, self.features[node], moved)
            node = child
        depth = self.path_lengths[node].sum(dim=1)
        typical = self.expected_lengths[self.roots].sum()
        apart = depth - typical
        tangent = -torch.log(torch.tensor(2.0)) / self.normaliser * self._score(typical)
        secant = (self._score(depth) - self._score(typical)) / torch.where(apart == 0, 1.0, apart)
        slope = torch.where(apart.abs() > 1e-9, secant, tangent)
        return (credit * slope[:, None]).float()

    def _step(self, rows: torch.Tensor, node: torch.Tensor) -> torch.Tensor:
        """The child each row moves to from its ``node`` in every tree, ``(batch, trees)``."""
        goes_left = rows.gather(1, self.features[node]) <= self.thresholds[node]
        return torch.where(goes_left, self.left[node], self.right[node])

    def _score(self, depth: torch.Tensor) -> torch.Tensor:
        """scikit-learn's score for a summed path length: 2 to the minus mean depth."""
        return torch.pow(2.0, -depth / self.normaliser)

    def blend(self, reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The standardised reconstruction score plus the weighted, standardised isolation."""
        c = self.blend_scales.to(reconstruction.dtype)
        isolation: torch.Tensor = self(x)
        isolation = isolation.to(reconstruction.dtype)
        return (reconstruction - c[0]) / c[1] + c[4] * (isolation - c[2]) / c[3]
