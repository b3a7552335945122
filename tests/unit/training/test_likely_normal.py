"""Unlabeled rows most like a labeled anomaly are not trained on as negatives."""

from __future__ import annotations

import numpy as np
import torch

from anomalyflow.models.networks import TabularEncoder
from anomalyflow.training.finetune import _likely_normal


def test_the_unlabeled_kin_of_a_labeled_anomaly_are_left_out_of_the_negatives() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(200, 5)).astype(np.float32)
    rows[1:6] = rows[0] + 0.01 * rng.normal(size=(5, 5)).astype(np.float32)  # its kin
    encoder = TabularEncoder(5, 32, 8)
    unlabeled = np.arange(1, 200)

    negatives = _likely_normal(
        encoder, torch.from_numpy(rows), torch.tensor([0]), unlabeled, share=0.05
    )

    assert len(negatives) == len(unlabeled) - 10  # 5% of the 200 rows
    assert not set(range(1, 6)) & set(negatives.tolist())
    untouched = _likely_normal(
        encoder, torch.from_numpy(rows), torch.tensor([0]), unlabeled, share=0.0
    )
    assert sorted(untouched.tolist()) == unlabeled.tolist()
