"""The linear half of the scorer: a logistic regression beside the fine-tuned network.

With a handful of labels, a strongly regularised linear model on the scaled features and
the label-free score ranks well where the network does not (one direction in the
features separates the anomalies), and the network where a line cannot. The scorer adds
the two scores, each standardised by its median and spread on the training rows, so
neither drowns the other.
"""

from __future__ import annotations

import torch
from torch import nn


class LinearScore(nn.Module):
    """Logit of ``[scaled features, reconstruction score]``, and the scales of the blend.

    ``scales`` holds ``(network centre, network spread, linear centre, linear spread)``,
    measured on the training rows when the model is fitted.
    """

    scales: torch.Tensor

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features + 1, 1)
        self.register_buffer("scales", torch.tensor([0.0, 1.0, 0.0, 1.0]))

    def forward(self, x: torch.Tensor, reconstruction_score: torch.Tensor) -> torch.Tensor:
        """The linear logit ``(batch,)`` for scaled rows and their reconstruction score."""
        inputs = torch.cat([x, reconstruction_score[:, None].to(x.dtype)], dim=1)
        return self.linear(inputs).squeeze(1)  # type: ignore[no-any-return]

    def blend(
        self, network: torch.Tensor, x: torch.Tensor, reconstruction_score: torch.Tensor
    ) -> torch.Tensor:
        """The sum of the standardised network and linear scores, ``(batch,)``."""
        scales = self.scales.to(network.dtype)
        linear: torch.Tensor = self(x, reconstruction_score)
        linear = linear.to(network.dtype)
        return (network - scales[0]) / scales[1] + (linear - scales[2]) / scales[3]
