"""Partitions of a large batch for the checks that run on Dask (``task_runner: dask``).

A partition is a Parquet row group, or a whole file of a folder of Parquet files (the
same units ``score --dask`` uses). Validation merges per-partition results into the
one-process result; drift works on a bounded uniform sample drawn per partition. Both
run on the Dask cluster the flow's task runner uses (made current by
``flows.runners.on_flow_cluster``), else on ``orchestration.dask_address``, else on a
local cluster of ``orchestration.dask_workers`` started for the stage.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from anomalyflow.data.loaders import read_frame
from anomalyflow.params import OrchestrationParams

if TYPE_CHECKING:
    from distributed import Client

    from anomalyflow.scoring_dask import Partition

# scoring_dask is imported where used: it imports torch, which validation never needs.


def on_dask(params: OrchestrationParams) -> bool:
    """Whether the checks of a batch run per partition on Dask."""
    return params.task_runner == "dask"


def split(source: Path) -> list[Partition] | None:
    """The partitions of a Parquet file with two or more row groups, or of a folder of
    Parquet files; None for anything else (a CSV, one row group), checked as one frame."""
    if not source.is_dir():
        if source.suffix.lower() != ".parquet" or not source.is_file():
            return None
        if pq.ParquetFile(source).metadata.num_row_groups < 2:
            return None
    from anomalyflow.scoring_dask import partitions

    parts = partitions(source.resolve(), ())  # resolved: workers may run elsewhere
    return parts if len(parts) > 1 or source.is_dir() else None


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
def partition_client(params: OrchestrationParams) -> Iterator[Client]:
    """The Dask client the checks use: the current one (the flow's cluster), else one
    for ``dask_address``, else a local cluster closed when the stage is done.

    Raises:
        DaskUnavailable: ``dask_address`` cannot be reached.
    """
    from distributed import default_client

    from anomalyflow.scoring_dask import LOCAL, dask_client

    try:
        yield default_client()
        return
    except ValueError:  # no client is current in this process
        pass
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
        from anomalyflow.scoring_dask import partitions

        return uniform_sample(client, partitions(source.resolve(), ()), rows, seed)
    frame = read_frame(source)
    if rows >= len(frame):
        return frame, len(frame)
    kept = np.sort(np.random.default_rng(seed).choice(len(frame), size=rows, replace=False))
    return frame.iloc[kept].reset_index(drop=True), len(frame)
