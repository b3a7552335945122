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
    always 0), ``leaves`` ``(trees * 2**depth,)``, tree after tree, and ``scales``
    ``(score centre, score spread, tree centre, tree spread)`` measured on the training
    rows.
    """

    features: torch.Tensor
    borders: torch.Tensor
    leaves: torch.Tensor
    scales: torch.Tensor

    def __init__(self, trees: int, depth: int) -> None:
        super().__init__()
        self.register_buffer("features", torch.zeros(trees, depth, dtype=torch.int64))
        self.register_buffer("borders", torch.full((trees, depth), float("inf")))
        self.register_buffer("leaves", torch.zeros(trees * 2**depth))
        self.register_buffer("scales", torch.tensor([0.0, 1.0, 0.0, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The trees' raw score ``(batch,)`` for scaled rows ``(batch, features)``.

        Compared in float32, as CatBoost compares, so a row lands in the leaf it would.
        """
        trees, depth = self.borders.shape
        rows = x.float()
        index = torch.arange(trees, device=x.device) * 2**depth  # first leaf of each tree
        for level in range(depth):
            above = rows[:, self.features[:, level]] > self.borders[:, level]
            index = index + above.to(torch.int64) * 2**level
        scores: torch.Tensor = self.leaves[index].sum(dim=1)
        return scores

    def blend(self, score: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The sum of the standardised ``score`` (the other halves) and tree score."""
        scales = self.scales.to(score.dtype)
        trees: torch.Tensor = self(x)
        trees = trees.to(score.dtype)
        return (score - scales[0]) / scales[1] + (trees - scales[2]) / scales[3]
