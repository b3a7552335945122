"""The tree half of the scorer: gradient-boosted oblivious trees beside the network.

Trees split on one feature at a time, which is how the anomalies of many tabular sets
differ (one reading out of its usual range, a category of rows), and what a network or a
line needs many labels to learn. CatBoost fits them (``training/trees.py``); its trees are
oblivious, every node of a level splitting on the same feature and border, so a tree is
``depth`` comparisons that spell a leaf's index. Held as tensors, they run inside the same
torch module as the network: saved in safetensors with it, exported to ONNX with it, on
the same device, with no model file of another library to load or trust.
"""

from __future__ import annotations

import torch
from torch import nn


class TreeScore(nn.Module):
    """Sum of the leaf values the rows reach, and the scales of the blend.

    Buffers, for ``trees`` trees of at most ``depth`` levels: ``features`` and ``borders``
    ``(trees, depth)`` (a shallower tree is padded with an infinite border, whose bit is
    always 0), ``leaves`` ``(trees * 2**depth,)``, tree after tree, ``path_means``
    ``(trees, depth + 1, 2**depth)``, the training rows' mean leaf value once the first
    ``k`` levels are known (indexed by those ``k`` bits), and ``scales``
    ``(score centre, score spread, tree centre, tree spread)`` measured on the training
    rows.
    """

    features: torch.Tensor
    borders: torch.Tensor
    leaves: torch.Tensor
    path_means: torch.Tensor
    scales: torch.Tensor

    def __init__(self, trees: int, depth: int) -> None:
        super().__init__()
        self.register_buffer("features", torch.zeros(trees, depth, dtype=torch.int64))
        self.register_buffer("borders", torch.full((trees, depth), float("inf")))
        self.register_buffer("leaves", torch.zeros(trees * 2**depth))
        self.register_buffer("path_means", torch.zeros(trees, depth + 1, 2**depth))
        self.register_buffer("scales", torch.tensor([0.0, 1.0, 0.0, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The trees' raw score ``(batch,)`` for scaled rows ``(batch, features)``.

        Compared in float32, as CatBoost compares, so a row lands in the leaf it would.
        """
        trees, depth = self.borders.shape
        rows = x.float()
        index = torch.arange(trees, device=x.device) * 2**depth  # first leaf of each tree
        for level in range(depth):
            index = index + self._bit(rows, level)
        # Summed in float64: a float32 sum of a thousand leaves depends on the order of
        # the additions, which differs between torch and ONNX Runtime.
        scores: torch.Tensor = self.leaves[index].double().sum(dim=1).float()
        return scores

    def contributions(self, x: torch.Tensor) -> torch.Tensor:
        """How much each feature moves each row's tree score, ``(batch, features)``.

        Each level's split is credited with the change in the expected leaf value it makes
        on the row's path (Saabas' attribution), so a row's contributions add up to its
        tree score less the trees' mean on the training rows.
        """
        trees, depth = self.borders.shape
        rows = x.float()
        every_tree = torch.arange(trees, device=x.device)
        known = torch.zeros(rows.shape[0], trees, dtype=torch.int64, device=x.device)
        before = self.path_means[:, 0, 0].expand(rows.shape[0], trees)
        out = torch.zeros(rows.shape, device=x.device)
        for level in range(depth):
            known = known + self._bit(rows, level)
            after = self.path_means[every_tree, level + 1][every_tree, known]
            out.index_add_(1, self.features[:, level], after - before)
            before = after
        return out

    def _bit(self, rows: torch.Tensor, level: int) -> torch.Tensor:
        """Each row's leaf-index bit for ``level`` of every tree, ``(batch, trees)``."""
        above = rows[:, self.features[:, level]] > self.borders[:, level]
        bit: torch.Tensor = above.to(torch.int64) * 2**level
        return bit

    def blend(self, score: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The sum of the standardised ``score`` (the other halves) and tree score."""
        scales = self.scales.to(score.dtype)
        trees: torch.Tensor = self(x)
        trees = trees.to(score.dtype)
        return (score - scales[0]) / scales[1] + (trees - scales[2]) / scales[3]
