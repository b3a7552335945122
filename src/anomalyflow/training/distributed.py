"""Data-parallel pretraining: ranks started by torch's own launcher, each on its shard.

``pretrain.nproc`` processes per machine are started by the launcher behind ``torchrun``
(``torch.distributed.launcher.api.elastic_launch``): gloo on the CPU, NCCL on CUDA. Each
reads its own row groups of the reference and DistributedDataParallel averages their
gradients; rank 0 calibrates and hands back the backbone, which only then is written,
so a failing rank leaves nothing behind. Across machines every machine runs the same
command with ``PET_NNODES`` and ``PET_RDZV_ENDPOINT``, torchrun's own environment
names for ``--nnodes`` and ``--rdzv-endpoint`` (``anomalyflow pretrain`` sets them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, record
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from anomalyflow.data.loaders import read_reference
from anomalyflow.data.reference_stream import PARQUET_SUFFIXES, ReferenceStream
from anomalyflow.data.scaling import RobustScaler
from anomalyflow.data.schema import Schema
from anomalyflow.device import resolve_device
from anomalyflow.errors import Refusal, debugging
from anomalyflow.models.backbone import Backbone
from anomalyflow.params import ModelParams, PretrainParams, RuntimeParams
from anomalyflow.training.loop import TrainingStats
from anomalyflow.training.pretrain import pretrain
from anomalyflow.training.streamed import ScaledReference, check_shards, pretrain_streamed

J = TypeVar("J")
T = TypeVar("T")
_LAUNCHER_LOGGERS = ("torch.distributed.elastic", "torch.multiprocessing")


class RankFailed(Refusal):
    """A rank of a distributed run failed; the run stops and nothing is written."""


class TrainedOnOtherMachine(Exception):
    """This machine's ranks finished; rank 0, on another machine, writes the backbone."""


@dataclass(frozen=True)
class Rendezvous:
    """Where the machines of one run meet; one machine alone needs none."""

    nnodes: int = 1
    endpoint: str | None = None  # host:port of the rendezvous (c10d), on one of the machines

    @classmethod
    def from_environment(cls) -> Rendezvous:
        """torchrun's ``PET_NNODES`` and ``PET_RDZV_ENDPOINT``, as its launcher reads them."""
        return cls(int(os.environ.get("PET_NNODES", "1")), os.environ.get("PET_RDZV_ENDPOINT"))

    def export(self) -> None:
        """Set them for this process, so every pretraining in it meets the other machines;
        one machine alone leaves the environment as it is."""
        if self.nnodes == 1:
            return
        if not self.endpoint:
            raise Refusal("--nnodes above 1 needs --rdzv-endpoint host:port (on one machine)")
        os.environ["PET_NNODES"] = str(self.nnodes)
        os.environ["PET_RDZV_ENDPOINT"] = self.endpoint


@dataclass(frozen=True)
class _Job:
    """What every rank receives (pickled into its process)."""

    reference: ScaledReference
    model: ModelParams
    params: PretrainParams
    runtime: RuntimeParams


def pretrain_backbone(
    rows: np.ndarray | ReferenceStream,
    scaler: RobustScaler,
    model: ModelParams,
    params: PretrainParams,
    runtime: RuntimeParams,
    checkpoint: Path | None = None,
) -> tuple[Backbone, TrainingStats]:
    """Pretrain on ``rows`` ``(rows, features)`` held in memory, or on a streamed reference.

    A stream is read in row groups, ``pretrain.memory_rows`` rows at most at a time, here
    or by ``params.nproc`` ranks per machine (``PET_NNODES`` machines). ``scaler`` maps
    raw rows to what the network sees.

    Raises:
        RankFailed: a rank failed, named with its error.
        TrainedOnOtherMachine: rank 0 ran elsewhere.
    """
    if isinstance(rows, np.ndarray):
        return pretrain(scaler.transform(rows), model, params, runtime, checkpoint)
    reference = ScaledReference(rows, scaler)
    rendezvous = Rendezvous.from_environment()
    if params.nproc == 1 and rendezvous.nnodes == 1:
        return pretrain_streamed(reference, model, params, runtime, checkpoint)
    check_shards(rows, params.nproc * rendezvous.nnodes)
    job = _Job(reference, model, params, runtime)
    results = launch(_train_rank, job, params.nproc, rendezvous)
    first = results.get(0)
    if first is None:
        raise TrainedOnOtherMachine(f"ranks {sorted(results)} done; rank 0 writes the backbone")
    state, stats = first
    backbone = Backbone(len(rows.features), model.hidden_dim, model.embedding_dim)
    backbone.load_state_dict(state)
    return backbone.eval(), stats


def reference_for_pretraining(
    path: Path, schema: Schema, params: PretrainParams
) -> np.ndarray | ReferenceStream:
    """The reference's features read whole, as ever, or a stream of its row groups.

    Streamed where ranks share the work (``params.nproc`` above 1, or several machines) or
    where a Parquet reference holds more than ``params.memory_rows`` rows; a CSV
    reference is read whole.
    """
    if params.nproc > 1 or Rendezvous.from_environment().nnodes > 1:
        return ReferenceStream(path, schema)
    if path.suffix.lower() in PARQUET_SUFFIXES and path.is_file():
        with pq.ParquetFile(path) as file:
            if file.metadata.num_rows > params.memory_rows:
                return ReferenceStream(path, schema)
    return read_reference(path, schema).x


def rows_in_memory(
    reference: np.ndarray | ReferenceStream, params: PretrainParams, seed: int
) -> np.ndarray:
    """Rows to fit on in memory (the threshold): all, or the sample the scaler fitted on."""
    if isinstance(reference, ReferenceStream):
        return reference.sample(params.memory_rows, seed)
    return reference


def launch(worker: Callable[[J], T], job: J, nproc: int, rendezvous: Rendezvous) -> dict[int, T]:
    """Run ``worker(job)`` in ``nproc`` processes here; this machine's results by rank.

    No restarts: a rank that fails stops every rank, and the first failure is raised as
    one line (the launcher's own log of it shows with ``--debug``).
    """
    config = LaunchConfig(
        min_nodes=rendezvous.nnodes,
        max_nodes=rendezvous.nnodes,
        nproc_per_node=nproc,
        run_id="anomalyflow-pretrain" if rendezvous.endpoint else str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint=rendezvous.endpoint or "localhost:0",
        max_restarts=0,
        start_method="spawn",
    )
    try:
        with _quiet_launcher():
            outputs: dict[int, T] = elastic_launch(config, worker)(job)
        return outputs
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        message = failure.message
        if isinstance(message, dict):
            message = message.get("message", "")
        reason = message or f"exit code {failure.exitcode}"
        world = nproc * rendezvous.nnodes
        raise RankFailed(f"pretrain rank {rank} of {world} failed: {reason}") from None


@record
def _train_rank(job: _Job) -> tuple[dict[str, torch.Tensor], TrainingStats] | None:
    """One rank: join the group, train on this rank's shard; rank 0 returns the result."""
    device = resolve_device(job.runtime.device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    if job.runtime.num_threads > 0:
        torch.set_num_threads(job.runtime.num_threads)
    else:  # the machine's cores shared between its ranks, as torchrun does
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["LOCAL_WORLD_SIZE"])))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        backbone, stats = pretrain_streamed(
            job.reference, job.model, job.params, job.runtime, device=device
        )
        return (backbone.state_dict(), stats) if dist.get_rank() == 0 else None
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def _quiet_launcher() -> Iterator[None]:
    """Hush the launcher's log of a failure (a page of tracebacks) unless debugging."""
    loggers = [logging.getLogger(name) for name in _LAUNCHER_LOGGERS]
    levels = [logger.level for logger in loggers]
    if not debugging():
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
