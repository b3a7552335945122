"""Torch modules only: the tabular encoder, its pretext decoder and the scoring head.

No training code lives here (see ``anomalyflow.training``), so the networks can be
reused by the service and the benchmark unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class TabularEncoder(nn.Module):
    """Maps a row with some cells hidden to an embedding.

    The mask is an input too: the network must know which cells it cannot see, or it
    would take a hidden cell's placeholder (zero, the median after rank-Gauss scaling)
    for a real value.
    """

    def __init__(self, n_features: int, hidden_dim: int, embedding_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(2 * n_features, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, embedding_dim),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Embed ``x`` ``(batch, features)``; ``mask`` is 1 where a cell is hidden."""
        visible = x * (1.0 - mask)
        return self.layers(torch.cat([visible, mask], dim=1))  # type: ignore[no-any-return]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Embed whole rows ``(batch, features)``, no cell hidden (the scoring view)."""
        return self(x, torch.zeros_like(x))  # type: ignore[no-any-return]


class ReconstructionHead(nn.Module):
    """Predicts every cell of the row from the embedding (the pretext task)."""

    def __init__(self, n_features: int, hidden_dim: int, embedding_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(embedding_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, n_features)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``(batch, features)`` of the embedding ``(batch, embedding)``."""
        return self.layers(z)  # type: ignore[no-any-return]


class ScoringHead(nn.Module):
    """Anomaly logit from the embedding plus the pretrained reconstruction score.

    It starts as the unsupervised detector (the MLP's last layer is zero, the skip weight
    positive), so a handful of labels nudges a sound ranking instead of replacing it.
    """

    def __init__(self, embedding_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(embedding_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, 1)
        )
        last = self.mlp[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        # softplus(0.5413) == 1: the reconstruction score enters with unit weight.
        self.skip_weight = nn.Parameter(torch.tensor(0.5413))

    def forward(self, z: torch.Tensor, reconstruction_score: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch,)``; ``reconstruction_score`` is ``(batch,)``, zeros if absent."""
        skip = nn.functional.softplus(self.skip_weight) * reconstruction_score
        return self.mlp(z).squeeze(1) + skip  # type: ignore[no-any-return]
