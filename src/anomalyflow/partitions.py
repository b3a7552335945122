"""Partitions of a large batch: Parquet row groups, or the files of a folder of Parquet
files, each a unit of work for a Dask worker, and the cluster they go to.

``score --dask`` scores each partition; with ``task_runner: dask`` validation merges
per-partition results into the one-process result, and drift works on a bounded
uniform sample drawn per partition. The checks run on the Dask cluster of the flow's
task runner (handed over by ``flows.runners.on_flow_cluster``, started on first use),
else on the client current in this process, else on ``orchestration.dask_address``,
else on a local cluster of ``orchestration.dask_workers`` started for the stage. This
module imports no torch: workers that only read and check partitions start faster.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from anomalyflow.data.loaders import read_frame
from anomalyflow.data.schema import InputError
from anomalyflow.errors import Refusal
from anomalyflow.params import OrchestrationParams

if TYPE_CHECKING:
    from distributed import Client

LOCAL = "local"  # --dask local: a LocalCluster on this machine, closed after
CONNECT_TIMEOUT = "20s"
# How to reach the running flow's Dask cluster, set by flows.runners.on_flow_cluster.
_FLOW_CLUSTER: ContextVar[Callable[[], Client] | None] = ContextVar("flow_cluster", default=None)


@dataclass(frozen=True)
class Partition:
    """One unit of work: a row group of a file, or a whole file of a folder."""

    index: int  # its place in the input's row order; names its part file
    path: Path
    row_groups: list[int] | None  # None: every row group of the file
    offset: int  # file row of its first row, so refusals name rows as without Dask
    rows: int


class DaskUnavailable(Refusal):
    """The Dask scheduler named by ``--dask`` or ``orchestration.dask_address`` is unreachable."""


def partitions(source: Path, features: tuple[str, ...]) -> list[Partition]:
    """The non-empty partitions of a Parquet file (row groups) or folder (files, by name).

    Raises:
        InputError: CSV input, no Parquet files, an unreadable file or a missing feature,
            before any cluster is started.
    """
    if source.is_dir():
        files = sorted(source.glob("*.parquet"))
        if not files:
            raise InputError(source, None, "a folder to score must hold .parquet files")
    elif source.suffix.lower() == ".csv":
        raise InputError(
            source,
            None,
            "--dask scores Parquet (a row group or file per partition); convert the CSV "
            "to Parquet, or score it without --dask",
        )
    elif source.suffix.lower() != ".parquet" or not source.is_file():
        raise InputError(source, None, "expected a .parquet file or a folder of them")
    else:
        files = [source]
    found: list[Partition] = []
    for path in files:
        metadata = _footer(path, features)
        if source.is_dir():
            found.append(Partition(len(found), path, None, 0, metadata.num_rows))
            continue
        offset = 0
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            found.append(Partition(len(found), path, [group], offset, rows))
            offset += rows
    found = [p for p in found if p.rows > 0]
    if not found:
        raise InputError(source, None, "has no rows to score")
    return [Partition(i, p.path, p.row_groups, p.offset, p.rows) for i, p in enumerate(found)]


def _footer(path: Path, features: tuple[str, ...]) -> pq.FileMetaData:
    """The file's Parquet footer, once it has every feature the model needs."""
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as failed:
        raise InputError(path, None, f"not a readable Parquet file ({failed})") from None
    missing = [f for f in features if f not in parquet.schema_arrow.names]
    if missing:
        raise InputError(path, missing[0], "the model needs this feature; it is missing")
    return parquet.metadata


@contextlib.contextmanager
def dask_client(address: str, local_workers: int) -> Iterator[Client]:
    """A client of a new LocalCluster (``local``, closed after) or of ``address``."""
    from distributed import Client, LocalCluster

    if address == LOCAL:
        # Loopback only, one thread per worker process: torch then uses one core each.
        # Workers that imported torch often outlive the nanny's 4 s grace at close and
        # are killed with a warning; their partitions are written by then, so only
        # errors are logged.
        with (
            LocalCluster(
                n_workers=local_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as failed:
        raise DaskUnavailable(f"cannot reach the Dask scheduler at {address}: {failed}") from None
    with client:
        yield client


def on_dask(params: OrchestrationParams) -> bool:
    """Whether the checks of a batch run per partition on Dask."""
    return params.task_runner == "dask"


def split(source: Path, min_rows: int) -> list[Partition] | None:
    """The partitions to validate a Parquet file or a folder of Parquet files by: its row
    groups (consecutive ones merged until each holds ``min_rows``), or its files; None
    where that leaves one partition of a file, or for a CSV: checked as one frame.

    Great Expectations spends about 2 s per run whatever its rows, so partitions much
    smaller than a few hundred thousand rows cost more than they save.
    """
    if not source.is_dir():
        if source.suffix.lower() != ".parquet" or not source.is_file():
            return None
        if pq.ParquetFile(source).metadata.num_row_groups < 2:
            return None
    parts = partitions(source.resolve(), ())  # resolved: workers may run elsewhere
    merged: list[Partition] = []
    for part in parts:
        last = merged[-1] if merged else None
        if last and last.path == part.path and last.row_groups and last.rows < min_rows:
            groups = [*last.row_groups, *(part.row_groups or [])]
            merged[-1] = replace(last, row_groups=groups, rows=last.rows + part.rows)
        else:
            merged.append(replace(part, index=len(merged)))
    return merged if len(merged) > 1 or source.is_dir() else None


def parquet_rows(source: Path) -> int | None:
    """Rows of a Parquet file or folder of Parquet files, from their footers; None for
    anything else (a CSV's rows are known only once it is read)."""
    if source.is_dir():
        return sum(int(pq.ParquetFile(f).metadata.num_rows) for f in source.glob("*.parquet"))
    if source.suffix.lower() == ".parquet" and source.is_file():
        return int(pq.ParquetFile(source).metadata.num_rows)
    return None


def read_partition(part: Partition, rows: np.ndarray | None = None) -> pd.DataFrame:
    """The partition's rows as ``pd.read_parquet`` reads them (only ``rows``, if given,
    positions within the partition); the frame is indexed from 0 (runs on a worker)."""
    parquet = pq.ParquetFile(part.path)
    groups = range(parquet.num_row_groups) if part.row_groups is None else part.row_groups
    table = parquet.read_row_groups(list(groups), use_pandas_metadata=True)
    if rows is not None:
        table = table.take(rows)
    frame: pd.DataFrame = table.to_pandas().reset_index(drop=True)
    return frame


@contextlib.contextmanager
def cluster_of_flow(connect: Callable[[], Client]) -> Iterator[None]:
    """Within this block the checks use ``connect()``'s client: the flow's task runner's
    cluster, which the runner starts on first use, so a batch small enough to check as
    one frame starts no cluster."""
    token = _FLOW_CLUSTER.set(connect)
    try:
        yield
    finally:
        _FLOW_CLUSTER.reset(token)


@contextlib.contextmanager
def partition_client(params: OrchestrationParams) -> Iterator[Client]:
    """The Dask client the checks use: the flow's cluster (see :func:`cluster_of_flow`),
    else the client current in this process, else one for ``dask_address``, else a local
    cluster closed when the stage is done.

    Raises:
        DaskUnavailable: ``dask_address`` cannot be reached.
    """
    from distributed import default_client

    connect = _FLOW_CLUSTER.get()
    current: Client | None = connect() if connect else None
    if current is None:
        with contextlib.suppress(ValueError):  # ValueError: no client is current
            current = default_client()
    if current is not None:
        yield current
        return
    with dask_client(params.dask_address or LOCAL, params.dask_workers) as client:
        yield client


def sample_partition(part: Partition, take: int, seed: int) -> pd.DataFrame:
    """``take`` rows of the partition drawn uniformly without replacement, in file order
    (runs on a worker; the seed is the run's seed and the partition's place)."""
    if take >= part.rows:
        return read_partition(part)
    rng = np.random.default_rng([seed, part.index])
    return read_partition(part, np.sort(rng.choice(part.rows, size=take, replace=False)))


def uniform_sample(
    client: Client, parts: list[Partition], rows: int, seed: int
) -> tuple[pd.DataFrame, int]:
    """A uniform sample of at most ``rows`` rows of all ``parts`` together, and their total.

    How many rows each partition gives is drawn once from the multivariate
    hypergeometric distribution, then each partition draws its own uniformly: together
    a simple random sample of the whole batch, though no process ever holds the batch.
    The same seed and partitions give the same sample.
    """
    sizes = np.array([p.rows for p in parts], dtype=np.int64)
    total = int(sizes.sum())
    if rows >= total:
        takes = sizes
    else:
        takes = np.random.default_rng(seed).multivariate_hypergeometric(sizes, rows)
    futures = [
        client.submit(sample_partition, part, int(take), seed, pure=False)
        for part, take in zip(parts, takes, strict=True)
        if take > 0
    ]
    frames = client.gather(futures)
    return pd.concat(frames, ignore_index=True), total


def sample_source(client: Client, source: Path, rows: int, seed: int) -> tuple[pd.DataFrame, int]:
    """A uniform sample of at most ``rows`` rows of ``source``, and its row count.

    Parquet (a file or a folder) is sampled per partition on ``client``'s workers; a
    CSV has no partitions, so it is read and sampled here, by the same rule.
    """
    if source.is_dir() or source.suffix.lower() == ".parquet":
        return uniform_sample(client, partitions(source.resolve(), ()), rows, seed)
    frame = read_frame(source)
    if rows >= len(frame):
        return frame, len(frame)
    kept = np.sort(np.random.default_rng(seed).choice(len(frame), size=rows, replace=False))
    return frame.iloc[kept].reset_index(drop=True), len(frame)
