"""What pretraining and fine-tuning share: the epoch loop, batch sizes, epoch budgets, stats.

Each stage says only what one epoch's batches and losses are; ``run_epochs`` owns the
rest (optimizer steps, checkpoints and resuming, the progress bar, early stopping), so
both stages resume, report and stop the same way.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from anomalyflow.training.checkpoint import load_checkpoint, save_checkpoint

BatchLosses = Callable[[int, torch.Generator], Iterable[tuple[torch.Tensor, int]]]
"""One epoch's batches: given the epoch and its generator, each batch's loss and row count.

A generator, not a list: each loss must be computed after the previous batch's step.
"""


@dataclass(frozen=True)
class TrainingStats:
    """Figures of one training run, printed by the benchmark and written as metrics."""

    epochs: int
    steps: int
    rows_seen: int
    seconds: float
    resumed_from_epoch: int
    final_loss: float
    world_size: int = 1  # processes that trained together (data-parallel ranks)
    epoch_losses: tuple[float, ...] = ()  # mean batch loss of each epoch run here: the curve

    @property
    def rows_per_second(self) -> float:
        """Training throughput over the run, rows per second."""
        return self.rows_seen / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Checkpointing:
    """What lets a run resume: the file each finished epoch is saved to, and what must match.

    Attributes:
        path: written after every epoch and resumed from (``None``: neither). The caller
            removes it once the work that follows training is done too.
        run_id: fingerprint of the data and settings that a saved epoch must carry.
        on_epoch_end: called with each finished epoch's index once it is saved (progress;
            fault injection, which interrupts a run between epochs).
    """

    path: Path | None
    run_id: str
    on_epoch_end: Callable[[int], None] | None = None

    def end_epoch(
        self, epoch: int, module: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
    ) -> None:
        """Save the finished ``epoch`` with the loop's ``state``, then say so."""
        if self.path is not None:
            saved = {
                "model": module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "loop": state,
                "fingerprint": self.run_id,
            }
            save_checkpoint(self.path, saved)
        if self.on_epoch_end is not None:
            self.on_epoch_end(epoch)


@dataclass(frozen=True)
class EarlyStopping:
    """Stop once a validation metric has not risen for ``patience`` epochs; keep the best.

    Attributes:
        metric: the validation metric of the module as it stands; higher is better.
        patience: epochs in a row without a rise that end training.
        grace_epochs: the first epochs, whose lack of a rise never counts against patience
            (fine-tuning's encoder is still frozen then, so a flat metric says little).
        name: the metric's label on the progress bar.
    """

    metric: Callable[[], float]
    patience: int
    grace_epochs: int
    name: str


def run_epochs(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_losses: BatchLosses,
    *,
    epochs: int,
    seed: int,
    label: str,
    progress: bool,
    checkpointing: Checkpointing,
    early_stopping: EarlyStopping | None = None,
) -> TrainingStats:
    """Train ``module`` for up to ``epochs`` epochs, one optimizer step per batch.

    Args:
        batch_losses: the stage's epoch. Each epoch draws from a generator derived from
            ``seed`` and the epoch, so a resumed run repeats the clean run exactly.
        label: the progress bar's name; ``progress`` shows the bar.
        checkpointing: where each epoch is saved and resumed from, and who hears of it.
        early_stopping: without it every epoch runs and the last weights are kept.

    Returns:
        The run's statistics; ``seconds`` covers the epochs run here.
    """
    state = _starting_state(module, optimizer, checkpointing, early_stopping)
    start_epoch = int(state["epoch"])
    steps = rows_seen = 0
    loss = float("nan")
    curve: list[float] = []
    started = time.perf_counter()
    bar = tqdm(
        range(start_epoch, epochs), desc=label, unit="epoch", disable=not progress, leave=False
    )
    for epoch in bar:
        module.train()
        losses = batch_losses(epoch, epoch_generator(seed, epoch))
        epoch_steps, epoch_rows, loss, mean_loss = _train_epoch(optimizer, losses)
        steps, rows_seen = steps + epoch_steps, rows_seen + epoch_rows
        curve.append(mean_loss)
        state["epoch"] = epoch + 1
        postfix = {"loss": f"{loss:.4f}"}
        stop = False
        if early_stopping is not None:
            metric, stop = _judge_epoch(early_stopping, module, state, epoch)
            postfix[early_stopping.name] = f"{metric:.3f}"
        bar.set_postfix(postfix)
        checkpointing.end_epoch(epoch, module, optimizer, state)
        if stop:
            break
    if early_stopping is not None:
        module.load_state_dict(state["best_weights"])
    seconds = time.perf_counter() - started
    return TrainingStats(
        int(state["epoch"]), steps, rows_seen, seconds, start_epoch, loss, epoch_losses=tuple(curve)
    )


def _train_epoch(
    optimizer: torch.optim.Optimizer, losses: Iterable[tuple[torch.Tensor, int]]
) -> tuple[int, int, float, float]:
    """Step on each batch's loss before the next batch is drawn.

    Returns:
        The epoch's steps, its rows, its last batch's loss and its mean batch loss.
    """
    steps = rows_seen = 0
    loss, total = float("nan"), 0.0
    for batch_loss, rows in losses:
        optimizer.zero_grad(set_to_none=True)
        batch_loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        steps += 1
        rows_seen += rows
        loss = float(batch_loss.detach())
        total += loss
    return steps, rows_seen, loss, total / steps if steps else float("nan")


def _starting_state(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    checkpointing: Checkpointing,
    early_stopping: EarlyStopping | None,
) -> dict[str, Any]:
    """The loop's state: the checkpoint's, its weights and optimizer loaded, or a new one.

    A new run counts its untrained weights as the best so far, so early stopping never
    returns weights worse than those it started from.
    """
    saved = load_checkpoint(checkpointing.path, checkpointing.run_id)
    if saved is not None:
        module.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        resumed: dict[str, Any] = saved["loop"]
        return resumed
    if early_stopping is None:
        return {"epoch": 0}
    return {
        "epoch": 0,
        "best_metric": early_stopping.metric(),
        "best_weights": copy.deepcopy(module.state_dict()),
        "stale_epochs": 0,
    }


def _judge_epoch(
    rule: EarlyStopping, module: nn.Module, state: dict[str, Any], epoch: int
) -> tuple[float, bool]:
    """Record the finished epoch's metric in ``state``; the metric and whether to stop."""
    metric = rule.metric()
    if metric > state["best_metric"]:
        state.update(
            best_metric=metric, best_weights=copy.deepcopy(module.state_dict()), stale_epochs=0
        )
        return metric, False
    if epoch < rule.grace_epochs:
        return metric, False
    state["stale_epochs"] += 1
    return metric, state["stale_epochs"] >= rule.patience


def resolve_batch_size(setting: int | Literal["auto"], rows: int) -> int:
    """``auto``: 256, smaller for small data so each epoch still takes several steps."""
    if setting != "auto":
        return setting
    return int(min(256, max(16, 2 ** math.floor(math.log2(max(rows // 8, 1))))))


def epoch_budget(rows: int, batch_size: int, max_epochs: int, max_steps: int) -> int:
    """Epochs to run: ``max_epochs`` on small data, fewer when that exceeds ``max_steps``."""
    steps_per_epoch = math.ceil(rows / batch_size)
    return max(1, min(max_epochs, max_steps // steps_per_epoch))


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Randomness of one epoch, derived from the seed so a resumed run repeats it exactly."""
    torch.manual_seed(seed * 1_000_003 + epoch)
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def batches(order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices of ``order``; the last one may be smaller."""
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
