"""The reconstruction score is calibrated on rows the backbone did not train on."""

from __future__ import annotations

import torch

from anomalyflow.training.pretrain import _calibration_split


def test_calibration_rows_are_held_out_of_training() -> None:
    train, calibration = _calibration_split(1000, seed=0)
    assert len(calibration) == 200
    assert len(set(train.tolist()) & set(calibration.tolist())) == 0
    assert torch.equal(torch.cat([train, calibration]).sort().values, torch.arange(1000))


def test_too_few_rows_calibrate_on_the_training_rows() -> None:
    train, calibration = _calibration_split(2, seed=0)
    assert torch.equal(train, torch.arange(2))
    assert torch.equal(calibration, torch.arange(2))
