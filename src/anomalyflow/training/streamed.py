"""Pretraining on a reference streamed from Parquet row groups, by one rank or several.

Each epoch deals the row groups, in an order drawn from the seed and the epoch, to the
ranks in turn; a rank packs its groups into buffers of at most ``pretrain.memory_rows``
rows and shuffles within each. Where the whole reference fits one buffer and one rank
trains, the batches are exactly those of in-memory pretraining, and so is the backbone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from anomalyflow.data.reference_stream import ReferenceStream, RowGroup
from anomalyflow.data.scaling import RobustScaler
from anomalyflow.data.schema import InputError
from anomalyflow.device import resolve_device, seed_everything
from anomalyflow.models.backbone import Backbone
from anomalyflow.params import ModelParams, PretrainParams, RuntimeParams
from anomalyflow.training.checkpoint import fingerprint, remove_checkpoint
from anomalyflow.training.loop import (
    Checkpointing,
    TrainingStats,
    epoch_budget,
    resolve_batch_size,
    run_epochs,
)
from anomalyflow.training.pretrain import calibrate, calibration_rows, reconstruction_losses

_RANK_SEED_STRIDE = 7919  # rank r draws masks and noise from seed + r * stride


@dataclass(frozen=True)
class ScaledReference:
    """A streamed reference and the scaler its rows pass through before the network."""

    stream: ReferenceStream
    scaler: RobustScaler

    def rows(self, groups: list[RowGroup], excluded: np.ndarray) -> torch.Tensor:
        """Scaled rows of ``groups`` in global order, less the ``excluded`` indices."""
        return torch.from_numpy(self.scaler.transform(self.stream.without(groups, excluded)))


@dataclass(frozen=True)
class EpochPlan:
    """Which row groups each rank reads in an epoch, and how many steps all ranks take.

    Attributes:
        excluded: sorted global indices held out of training (the calibration rows).
    """

    groups: tuple[RowGroup, ...]
    excluded: np.ndarray
    memory_rows: int
    batch_size: int
    seed: int
    world: int

    def shard(self, epoch: int, rank: int) -> list[RowGroup]:
        """``rank``'s groups: the epoch's shuffled order dealt round-robin, disjoint."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.groups))
        return [self.groups[i] for i in order[rank :: self.world]]

    def buffers(self, shard: list[RowGroup]) -> Iterator[list[RowGroup]]:
        """Consecutive groups of ``shard`` holding at most ``memory_rows`` rows (or one group)."""
        buffer: list[RowGroup] = []
        for group in shard:
            if buffer and sum(g.rows for g in buffer) + group.rows > self.memory_rows:
                yield buffer
                buffer = []
            buffer.append(group)
        if buffer:
            yield buffer

    def steps(self, epoch: int) -> int:
        """Batches every rank takes: the fewest any rank's rows make, so all step together.

        A buffer's rows beyond whole batches go on to the next buffer, so only a rank's
        last batch of the epoch may be short.
        """
        return min(
            math.ceil(self._training_rows(self.shard(epoch, rank)) / self.batch_size)
            for rank in range(self.world)
        )

    def _training_rows(self, groups: list[RowGroup]) -> int:
        held = sum(
            int(
                np.searchsorted(self.excluded, g.start + g.rows)
                - np.searchsorted(self.excluded, g.start)
            )
            for g in groups
        )
        return sum(g.rows for g in groups) - held


def pretrain_streamed(
    reference: ScaledReference,
    model: ModelParams,
    params: PretrainParams,
    runtime: RuntimeParams,
    checkpoint: Path | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    device: torch.device | None = None,
) -> tuple[Backbone, TrainingStats]:
    """``pretrain`` on a streamed reference; in a process group, this rank's part of it.

    Args:
        device: this rank's device; None: ``runtime.device``.
        checkpoint: as for ``pretrain``; unused by a distributed run, whose ranks on other
            machines could not see it, so a failed distributed run starts again.

    Returns:
        The backbone on the CPU, calibrated on held-out rows by rank 0 (other ranks'
        copy is not calibrated), and statistics over all ranks.
    """
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    device = device or resolve_device(runtime.device)
    seed_everything(runtime.seed)
    stream = reference.stream
    calibration = calibration_rows(stream.total_rows, runtime.seed).numpy()
    excluded = calibration if len(calibration) < stream.total_rows else calibration[:0]
    train_rows = stream.total_rows - len(excluded)
    batch_size = resolve_batch_size(params.batch_size, train_rows)
    plan = EpochPlan(
        stream.split(world), excluded, params.memory_rows, batch_size, runtime.seed, world
    )
    check_shards(stream, world)
    backbone = Backbone(len(stream.features), model.hidden_dim, model.embedding_dim).to(device)
    optimizer = torch.optim.AdamW(
        backbone.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    settings = {"model": asdict(model), "pretrain": asdict(params), "seed": runtime.seed}
    run_id = fingerprint(settings=settings | {"reference": stream.identity()})
    stats = run_epochs(
        backbone,
        optimizer,
        partial(
            _epoch_losses,
            _reconstructor(backbone, device, world),
            *(reference, plan, params, rank, device),
        ),
        epochs=epoch_budget(
            math.ceil(train_rows / world), batch_size, params.max_epochs, params.max_steps
        ),
        seed=runtime.seed + rank * _RANK_SEED_STRIDE,
        label="pretrain",
        progress=runtime.progress and rank == 0,
        checkpointing=Checkpointing(checkpoint if world == 1 else None, run_id, on_epoch_end),
    )
    stats = replace(stats, rows_seen=_summed(stats.rows_seen, device), world_size=world)
    if rank == 0:
        scaled = reference.scaler.transform(stream.take(calibration))
        calibrate(backbone, torch.from_numpy(scaled).to(device), device)
    remove_checkpoint(checkpoint)
    return backbone.cpu().eval(), stats


def _epoch_losses(
    reconstruct: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    reference: ScaledReference,
    plan: EpochPlan,
    params: PretrainParams,
    rank: int,
    device: torch.device,
    epoch: int,
    generator: torch.Generator,
) -> Iterator[tuple[torch.Tensor, int]]:
    """This rank's batches of one epoch, a buffer read only when the previous one is spent."""
    losses = (
        loss
        for rows in _whole_batches(reference, plan, rank, epoch, generator)
        for loss in reconstruction_losses(
            reconstruct, rows.to(device), params, plan.batch_size, epoch, generator
        )
    )
    return islice(losses, plan.steps(epoch))


def _whole_batches(
    reference: ScaledReference, plan: EpochPlan, rank: int, epoch: int, generator: torch.Generator
) -> Iterator[torch.Tensor]:
    """Each buffer's rows, those beyond whole batches (drawn at random) carried to the next.

    Cut at every buffer's end, an epoch would take a short batch per buffer, some of a
    few rows; each is a full optimizer step on a noisy gradient, and on 200,000 rows in
    four buffers they cost up to a third more loss. One buffer is left as it is.
    """
    buffers = list(plan.buffers(plan.shard(epoch, rank)))
    carried = None
    for index, buffer in enumerate(buffers):
        rows = reference.rows(buffer, plan.excluded)
        if carried is not None:
            rows = torch.cat([carried, rows])
        if index < len(buffers) - 1:
            whole = len(rows) // plan.batch_size * plan.batch_size
            order = torch.randperm(len(rows), generator=generator)
            rows, carried = rows[order[:whole]], rows[order[whole:]]
        yield rows


class _Reconstruction(nn.Module):
    """The backbone's pretext task as a forward pass, which DDP needs to share gradients."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.backbone.reconstruct(x, mask)


def _reconstructor(
    backbone: Backbone, device: torch.device, world: int
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The backbone's reconstruction, wrapped for data parallelism when ranks train together."""
    if world == 1:
        return backbone.reconstruct
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(_Reconstruction(backbone), device_ids=ids)


def _summed(value: int, device: torch.device) -> int:
    """``value`` added over the ranks of the process group (itself outside one)."""
    if not dist.is_initialized():
        return value
    total = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(total)
    return int(total.item())


def check_shards(stream: ReferenceStream, world: int) -> None:
    """Refuse a reference too small to give every rank rows of its own."""
    if len(stream.split(world)) < world:
        raise InputError(
            stream.path,
            None,
            f"has {stream.total_rows} rows for {world} ranks; lower pretrain.nproc",
        )
