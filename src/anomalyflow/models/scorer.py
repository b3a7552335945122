"""The fine-tuned detector network: pretrained score plus a new head on the encoder."""

from __future__ import annotations

import torch
from torch import nn

from anomalyflow.models.backbone import Backbone
from anomalyflow.models.networks import ScoringHead, TabularEncoder


class ScoringModel(nn.Module):
    """Anomaly logit per row.

    ``backbone`` stays frozen and supplies the reconstruction score; ``encoder`` starts as
    a copy of the backbone's encoder (or fresh, for the from-scratch ablation) and is
    fine-tuned together with ``head``.
    """

    def __init__(
        self, backbone: Backbone | None, encoder: TabularEncoder, head: ScoringHead
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.encoder = encoder
        self.head = head

    def reconstruction_score(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen backbone's score ``(batch,)``, or zeros without pretraining."""
        if self.backbone is None:
            return torch.zeros(x.shape[0], device=x.device)
        return self.backbone.reconstruction_score(x)

    def logits(self, x: torch.Tensor, reconstruction_score: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch,)`` given a precomputed reconstruction score (training)."""
        return self.head(self.encoder.embed(x), reconstruction_score)  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch,)`` for rows ``(batch, features)``; higher = more anomalous."""
        return self.logits(x, self.reconstruction_score(x).float())
