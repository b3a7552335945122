"""The fine-tuning loss asks only for labeled anomalies to rank above unlabeled rows."""

from __future__ import annotations

import torch

from anomalyflow.training.finetune import pairwise_loss


def test_the_loss_falls_as_labeled_anomalies_rise_above_the_unlabeled_rows() -> None:
    unlabeled = torch.tensor([0.0, 1.0, 2.0])
    below = pairwise_loss(torch.tensor([0.5]), unlabeled)
    above = pairwise_loss(torch.tensor([5.0]), unlabeled)
    assert above < below


def test_only_the_order_matters_not_the_level_of_the_unlabeled_scores() -> None:
    positive, unlabeled = torch.tensor([3.0, 4.0]), torch.tensor([-1.0, 0.0, 2.5])
    shifted = pairwise_loss(positive + 10.0, unlabeled + 10.0)
    torch.testing.assert_close(shifted, pairwise_loss(positive, unlabeled))
