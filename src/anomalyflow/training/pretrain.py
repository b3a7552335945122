"""Self-supervised pretraining: masked-feature reconstruction on unlabeled rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch

from anomalyflow.device import autocast, resolve_device, seed_everything
from anomalyflow.models.backbone import TAIL_LEVELS, Backbone
from anomalyflow.params import ModelParams, PretrainParams, RuntimeParams
from anomalyflow.training.checkpoint import fingerprint, remove_checkpoint
from anomalyflow.training.loop import (
    Checkpointing,
    TrainingStats,
    batches,
    epoch_budget,
    resolve_batch_size,
    run_epochs,
)

_CALIBRATION_ROWS = 20_000  # at most this many rows are held out of training to calibrate
_CALIBRATION_SHARE = 0.2  # share of the rows held out, up to _CALIBRATION_ROWS
_SCORE_BATCH = 4096


def pretrain(
    x: np.ndarray,
    model: ModelParams,
    params: PretrainParams,
    runtime: RuntimeParams,
    checkpoint: Path | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
) -> tuple[Backbone, TrainingStats]:
    """Train a backbone to predict hidden cells of scaled, unlabeled rows.

    Args:
        x: scaled rows ``(rows, features)``, float32; labels are never seen here.
        checkpoint: file written after every epoch; a run whose data and settings match
            resumes from it. Removed once training completes.
        on_epoch_end: called with the finished epoch's index (progress, fault injection).

    Returns:
        The backbone on the CPU, its reconstruction score calibrated on rows of ``x`` held
        out of training, and the run's statistics.
    """
    device = resolve_device(runtime.device)
    seed_everything(runtime.seed)
    train_rows, calibration_rows = _calibration_split(len(x), runtime.seed)
    batch_size = resolve_batch_size(params.batch_size, len(train_rows))
    backbone = Backbone(x.shape[1], model.hidden_dim, model.embedding_dim).to(device)
    optimizer = torch.optim.AdamW(
        backbone.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    train = data[train_rows.to(device)]
    settings = {"model": asdict(model), "pretrain": asdict(params), "seed": runtime.seed}
    run_id = fingerprint(x, settings=settings)
    stats = run_epochs(
        backbone,
        optimizer,
        partial(reconstruction_losses, backbone.reconstruct, train, params, batch_size),
        epochs=epoch_budget(len(train_rows), batch_size, params.max_epochs, params.max_steps),
        seed=runtime.seed,
        label="pretrain",
        progress=runtime.progress,
        checkpointing=Checkpointing(checkpoint, run_id, on_epoch_end),
    )
    calibrate(backbone, data[calibration_rows.to(device)], device)
    remove_checkpoint(checkpoint)
    return backbone.cpu().eval(), stats


def reconstruction_losses(
    reconstruct: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    train: torch.Tensor,
    params: PretrainParams,
    batch_size: int,
    epoch: int,
    generator: torch.Generator,
) -> Iterator[tuple[torch.Tensor, int]]:
    """One epoch over ``train``: per batch, the squared error on the cells hidden from it.

    ``reconstruct(corrupted, mask)`` is the backbone's (or its data-parallel wrapper's,
    whose forward pass shares gradients between ranks). The visible cells it reconstructs
    from carry Gaussian noise of ``params.noise_std``.
    ``epoch`` plays no part: ``generator`` already differs from epoch to epoch.
    """
    rows, n_features = train.shape
    for index in batches(torch.randperm(rows, generator=generator), batch_size):
        mask = _random_mask(len(index), n_features, params, generator).to(train.device)
        noise = torch.randn(len(index), n_features, generator=generator).to(train.device)
        clean = train[index.to(train.device)]
        corrupted = clean + params.noise_std * noise * (1.0 - mask)
        with autocast(train.device):
            prediction = reconstruct(corrupted, mask)
        squared = (prediction.float() - clean) ** 2
        yield (squared * mask).sum() / mask.sum(), len(index)


def _random_mask(
    rows: int, n_features: int, params: PretrainParams, generator: torch.Generator
) -> torch.Tensor:
    """1 where a cell is hidden; every row hides at least one cell, at a random rate."""
    span = params.max_mask_rate - params.min_mask_rate
    rate = params.min_mask_rate + span * torch.rand(rows, 1, generator=generator)
    mask = torch.rand(rows, n_features, generator=generator) < rate
    forced = torch.randint(n_features, (rows,), generator=generator)
    mask[torch.arange(rows), forced] = True
    return mask.float()


def _calibration_split(rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices ``(train, calibration)``, disjoint unless there are too few rows."""
    calibration = calibration_rows(rows, seed)
    if len(calibration) == rows:
        return calibration, calibration
    kept = torch.ones(rows, dtype=torch.bool)
    kept[calibration] = False
    return torch.arange(rows)[kept], calibration


def calibration_rows(rows: int, seed: int) -> torch.Tensor:
    """Sorted indices of the rows held out of training to calibrate; all when none can be.

    A network memorises its training rows (on small data most of all), so their errors
    understate a new row's: calibrated on them, the conditional level's tail score would
    call every new row extreme and drown the marginal level. The draw is a permutation of
    all indices: 8 bytes a row for a moment (160 MB at 20 million rows).
    """
    held = min(round(_CALIBRATION_SHARE * rows), _CALIBRATION_ROWS)
    if held == 0:
        return torch.arange(rows)
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))
    return order[:held].sort().values


@torch.no_grad()
def calibrate(backbone: Backbone, sample: torch.Tensor, device: torch.device) -> None:
    """Fit the per-feature error scale and the error quantiles on held-out rows."""
    backbone.eval()
    with autocast(device):
        conditional = torch.cat(
            [backbone.conditional_errors(chunk).float() for chunk in sample.split(_SCORE_BATCH)]
        )
    backbone.error_scale.copy_(conditional.mean(dim=0).clamp_min(1e-6))
    with autocast(device):
        errors = torch.cat(
            [backbone.level_errors(chunk).float() for chunk in sample.split(_SCORE_BATCH)]
        )
    levels = torch.linspace(0, 1, TAIL_LEVELS, device=errors.device)
    backbone.error_quantiles.copy_(torch.quantile(errors, levels, dim=0).T)
