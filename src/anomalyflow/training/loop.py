"""What pretraining and fine-tuning share: batch sizes, epoch budgets, run statistics."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch


@dataclass(frozen=True)
class TrainingStats:
    """Figures of one training run, printed by the benchmark and written as metrics."""

    epochs: int
    steps: int
    rows_seen: int
    seconds: float
    resumed_from_epoch: int
    final_loss: float

    @property
    def rows_per_second(self) -> float:
        """Training throughput over the run, rows per second."""
        return self.rows_seen / self.seconds if self.seconds > 0 else 0.0


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
