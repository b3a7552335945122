"""The two scorers: with no labels, the label-free score; fine-tuned, the pretrained score,
a new head on the encoder, a linear half and a tree half."""

from __future__ import annotations

import torch
from torch import nn

from anomalyflow.models.backbone import Backbone
from anomalyflow.models.isolation import IsolationScore
from anomalyflow.models.linear import LinearScore
from anomalyflow.models.networks import ScoringHead, TabularEncoder
from anomalyflow.models.trees import TreeScore


class ScoringModel(nn.Module):
    """Anomaly logit per row.

    ``backbone`` stays frozen and supplies the reconstruction score; ``encoder`` starts as
    a copy of the backbone's encoder (or fresh, for the from-scratch ablation) and is
    fine-tuned together with ``head``. ``linear``, fitted after them, adds its
    standardised score to theirs; without it the network's logit is the score. ``trees``,
    fitted last, adds its standardised score to that sum.
    """

    def __init__(
        self,
        backbone: Backbone | None,
        encoder: TabularEncoder,
        head: ScoringHead,
        linear: LinearScore | None = None,
        trees: TreeScore | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.encoder = encoder
        self.head = head
        self.linear = linear
        self.trees = trees

    def reconstruction_score(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen backbone's score ``(batch,)``, or zeros without pretraining."""
        if self.backbone is None:
            return torch.zeros(x.shape[0], device=x.device)
        return self.backbone.reconstruction_score(x)

    def logits(self, x: torch.Tensor, reconstruction_score: torch.Tensor) -> torch.Tensor:
        """The network's logits ``(batch,)`` given a precomputed reconstruction score."""
        return self.head(self.encoder.embed(x), reconstruction_score)  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(batch,)`` for rows ``(batch, features)``; higher = more anomalous."""
        reconstruction = self.reconstruction_score(x).float()
        score = self.logits(x, reconstruction)
        if self.linear is not None:
            score = self.linear.blend(score.float(), x, reconstruction)
        if self.trees is not None:
            score = self.trees.blend(score.float(), x)
        return score


class LabelFreeScorer(nn.Module):
    """Scores rows with no labels: the reconstruction score, plus the isolation half."""

    def __init__(self, backbone: Backbone, isolation: IsolationScore | None) -> None:
        super().__init__()
        self.backbone = backbone
        self.isolation = isolation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(batch,)`` for rows ``(batch, features)``; higher = more anomalous."""
        score = self.backbone.reconstruction_score(x)
        if self.isolation is not None:
            score = self.isolation.blend(score.float(), x)
        return score
