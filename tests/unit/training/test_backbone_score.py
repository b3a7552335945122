"""The backbone's score: continuous in the error, and stacked so that it exports."""

from __future__ import annotations

import torch

from anomalyflow.models.backbone import Backbone, _tail_score

LEVELS = 1001


def _step_score(values: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """The former step score: the share of calibration errors at or above the value."""
    below = torch.searchsorted(quantiles, values, right=True)
    beyond = torch.log(values / quantiles[-1]).clamp_min(0)
    return -torch.log(1.0 - below.double() / LEVELS + 1.0 / LEVELS) + beyond


def test_tail_score_is_continuous_and_keeps_the_step_score_at_each_quantile() -> None:
    generator = torch.Generator().manual_seed(0)
    quantiles = torch.sort(torch.rand(LEVELS, generator=generator, dtype=torch.float64)).values
    quantiles[500:503] = quantiles[500]  # tied calibration errors
    unique = torch.unique(quantiles)
    at = torch.cat([unique, quantiles[-1:] * 3.0])  # and an unseen extreme
    torch.testing.assert_close(_tail_score(at, quantiles), _step_score(at, quantiles))

    grid = torch.linspace(0.0, 1.2, 20_001, dtype=torch.float64)
    score = _tail_score(grid, quantiles)
    assert bool((score.diff() >= -1e-12).all())  # higher error, higher score
    just_below = torch.nextafter(unique, torch.zeros_like(unique))  # a rounding error apart
    jump = _tail_score(unique, quantiles) - _tail_score(just_below, quantiles)
    assert float(jump.abs().max()) < 1e-6  # the step score jumped up to 0.69 there


def test_conditional_errors_stack_the_groups_as_repeat_did() -> None:
    torch.manual_seed(0)
    backbone = Backbone(n_features=11, hidden_dim=16, embedding_dim=4).eval()
    x = torch.randn(5, 11)
    groups = backbone.masks.shape[0]
    stacked_x, stacked_mask = x.repeat(groups, 1), backbone.masks.repeat_interleave(5, dim=0)
    with torch.inference_mode():
        prediction = backbone.reconstruct(stacked_x, stacked_mask)
        expected = ((prediction - stacked_x) ** 2 * stacked_mask).view(groups, 5, -1).sum(dim=0)
        assert torch.equal(backbone.conditional_errors(x), expected)
