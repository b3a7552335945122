"""The pretrained backbone: encoder, pretext decoder, and its reconstruction score.

With no labels, a row is anomalous when its cells are hard to reconstruct. Two levels
are measured, because anomalies come in two kinds:

* conditional: each cell hidden (with its group) and predicted from the visible cells,
  its squared error divided by that feature's typical error; it catches rows whose
  values are individually plausible but do not fit together;
* marginal: every cell hidden at once, so the best guess is a typical row: the training
  median, which the robust scaler maps to zero. The error is the row's squared distance
  from it; it catches values that are extreme on their own. The network is not asked
  for this guess: it never sees an all-hidden row in training, and its extrapolated
  answer varies from run to run where the median does not.

Each level's mean error is turned into a tail score ``-log P(error >= e)`` against
held-out training rows, so both speak the same units, and the two are added.
"""

from __future__ import annotations

import torch
from torch import nn

from anomalyflow.models.networks import ReconstructionHead, TabularEncoder

MAX_MASK_GROUPS = 8  # scoring cost: one forward pass of the batch per group
TAIL_LEVELS = 1001  # quantiles of the calibration errors kept to compute tail scores


class Backbone(nn.Module):
    """Encoder plus decoder, with the statistics that turn errors into a score."""

    masks: torch.Tensor  # (groups, features), 1 where a cell is hidden
    error_scale: torch.Tensor  # (features,) typical conditional error per feature
    error_quantiles: torch.Tensor  # (2, TAIL_LEVELS) calibration errors per level

    def __init__(self, n_features: int, hidden_dim: int, embedding_dim: int) -> None:
        super().__init__()
        self.encoder = TabularEncoder(n_features, hidden_dim, embedding_dim)
        self.decoder = ReconstructionHead(n_features, hidden_dim, embedding_dim)
        groups = min(n_features, MAX_MASK_GROUPS)
        masks = torch.zeros(groups, n_features)
        masks[torch.arange(n_features) % groups, torch.arange(n_features)] = 1.0
        self.register_buffer("masks", masks)
        self.register_buffer("error_scale", torch.ones(n_features))
        self.register_buffer("error_quantiles", torch.zeros(2, TAIL_LEVELS))

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Prediction of every cell of ``x`` ``(batch, features)`` with ``mask`` hidden."""
        return self.decoder(self.encoder(x, mask))  # type: ignore[no-any-return]

    def conditional_errors(self, x: torch.Tensor) -> torch.Tensor:
        """Squared error ``(batch, features)`` of each cell, predicted with its group hidden.

        All masks run as one stacked batch, group after group: one large matmul is faster
        than several. Stacked by broadcasting, so the batch size stays symbolic when the
        network is exported to ONNX for serving.
        """
        masks = self.masks
        groups, (batch, features) = masks.shape[0], x.shape
        stacked_x = x.unsqueeze(0).expand(groups, batch, features).reshape(-1, features)
        stacked_mask = masks.unsqueeze(1).expand(groups, batch, features).reshape(-1, features)
        prediction = self.reconstruct(stacked_x, stacked_mask).float()
        errors = (prediction - stacked_x) ** 2 * stacked_mask
        return errors.view(groups, batch, -1).sum(dim=0)

    def level_errors(self, x: torch.Tensor) -> torch.Tensor:
        """Mean error per row at each level, conditional then marginal, ``(batch, 2)``."""
        conditional = self.conditional_errors(x).div(self.error_scale).mean(dim=1)
        marginal = x.float().square().mean(dim=1)
        return torch.stack([conditional, marginal], dim=1)

    def reconstruction_score(self, x: torch.Tensor) -> torch.Tensor:
        """Anomaly score per row, ``(batch,)``; higher = more anomalous."""
        errors = self.level_errors(x)
        quantiles = self.error_quantiles
        score = torch.zeros(x.shape[0], device=x.device)
        for level in range(errors.shape[1]):
            score = score + _tail_score(errors[:, level], quantiles[level])
        return score


def _tail_score(values: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """``-log`` of the calibration share at or above each value, ``(batch,)``.

    The share runs linearly between neighbouring calibration quantiles (and from an error
    of 0 to the smallest), so the score is continuous in the error. As a step function
    it jumped a whole quantile where an error crossed one, and an error a rounding error
    apart (another batch size, ONNX Runtime's matmul instead of torch's) then scored
    visibly apart. Beyond the largest calibration error the score keeps growing with the
    log of the error, so unseen extremes stay ranked instead of tying at the top.
    """
    levels = quantiles.shape[0]
    # How many calibration errors are at or below each value: counts rather than
    # torch.searchsorted, which ONNX cannot express.
    below = (quantiles[None, :] <= values[:, None]).sum(dim=1)
    edges = torch.cat([quantiles.new_zeros(1), quantiles])
    lower = edges[below]  # the largest calibration error at or below (0 below them all)
    upper = edges[(below + 1).clamp_max(levels)]  # the next larger one
    ties = (quantiles[None, :] == upper[:, None]).sum(dim=1)  # calibration errors equal to it
    width = upper - lower
    inside = torch.where(width > 0, (values - lower) / torch.where(width > 0, width, 1.0), 0.0)
    position = below + inside.clamp(0.0, 1.0) * ties * (below < levels)
    tail = 1.0 - position / levels + 1.0 / levels
    beyond = torch.log(values.clamp_min(1e-12) / quantiles[-1].clamp_min(1e-12)).clamp_min(0)
    return -torch.log(tail) + beyond
