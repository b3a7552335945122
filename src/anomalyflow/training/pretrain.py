"""Self-supervised pretraining: masked-feature reconstruction on unlabeled rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from anomalyflow.device import autocast, resolve_device, seed_everything
from anomalyflow.models.backbone import TAIL_LEVELS, Backbone
from anomalyflow.params import ModelParams, PretrainParams, RuntimeParams
from anomalyflow.training.checkpoint import (
    fingerprint,
    load_checkpoint,
    remove_checkpoint,
    save_checkpoint,
)
from anomalyflow.training.loop import (
    TrainingStats,
    batches,
    epoch_budget,
    epoch_generator,
    resolve_batch_size,
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
    rows, n_features = len(train_rows), x.shape[1]
    batch_size = resolve_batch_size(params.batch_size, rows)
    epochs = epoch_budget(rows, batch_size, params.max_epochs, params.max_steps)
    backbone = Backbone(n_features, model.hidden_dim, model.embedding_dim).to(device)
    optimizer = torch.optim.AdamW(
        backbone.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    run_id = fingerprint(
        x, settings={"model": asdict(model), "pretrain": asdict(params), "seed": runtime.seed}
    )
    start_epoch, loss_value = 0, float("nan")
    state = load_checkpoint(checkpoint, run_id)
    if state is not None:
        backbone.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"])

    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    train = data[train_rows.to(device)]
    steps = rows_seen = 0
    started = time.perf_counter()
    bar = tqdm(
        range(start_epoch, epochs),
        desc="pretrain",
        unit="epoch",
        disable=not runtime.progress,
        leave=False,
    )
    for epoch in bar:
        backbone.train()
        generator = epoch_generator(runtime.seed, epoch)
        for index in batches(torch.randperm(rows, generator=generator), batch_size):
            mask = _random_mask(len(index), n_features, params, generator).to(device)
            noise = torch.randn(len(index), n_features, generator=generator).to(device)
            clean = train[index.to(device)]
            corrupted = clean + params.noise_std * noise * (1.0 - mask)
            with autocast(device):
                prediction = backbone.reconstruct(corrupted, mask)
            squared = (prediction.float() - clean) ** 2
            loss = (squared * mask).sum() / mask.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            steps += 1
            rows_seen += len(index)
            loss_value = float(loss.detach())
        bar.set_postfix(loss=f"{loss_value:.4f}")
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                {
                    "model": backbone.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1,
                    "fingerprint": run_id,
                },
            )
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    seconds = time.perf_counter() - started
    _calibrate(backbone, data[calibration_rows.to(device)], device)
    remove_checkpoint(checkpoint)
    stats = TrainingStats(
        epochs=epochs,
        steps=steps,
        rows_seen=rows_seen,
        seconds=seconds,
        resumed_from_epoch=start_epoch,
        final_loss=loss_value,
    )
    return backbone.cpu().eval(), stats


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
    """Row indices ``(train, calibration)``, disjoint unless there are too few rows.

    A network memorises its training rows (on small data most of all), so their errors
    understate a new row's: calibrated on them, the conditional level's tail score would
    call every new row extreme and drown the marginal level.
    """
    held = min(round(_CALIBRATION_SHARE * rows), _CALIBRATION_ROWS)
    if held == 0:
        every = torch.arange(rows)
        return every, every
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))
    return order[held:].sort().values, order[:held].sort().values


@torch.no_grad()
def _calibrate(backbone: Backbone, sample: torch.Tensor, device: torch.device) -> None:
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
