"""Batch scoring on a Dask cluster: each Parquet row group, or each file of a folder of
Parquet files, is one partition scored by a worker.

The detector is verified once (its registry hash) in this process and scattered to every
worker, which keeps that one copy for all its partitions: no worker reads a model from
disk. Workers read their partition themselves and write its scored rows into a private
staging folder beside the output, so the input and the output's folder must be on a
filesystem the workers share (always true of ``local``). The output appears only once
every partition is scored: one file (``--output`` ending in ``.parquet`` or ``.csv``,
rows in input order) or a folder of ``part-NNNNN.parquet`` files (any other path). A
refused partition cancels the rest and leaves the output as it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from anomalyflow.atomic import SUFFIX, atomic_path, publish_folder
from anomalyflow.data.schema import InputError
from anomalyflow.detector import AnomalyDetector
from anomalyflow.errors import Refusal
from anomalyflow.scoring import FLAG_COLUMN, ScoredFile, read_chunks, scored_frame

if TYPE_CHECKING:
    from distributed import Client, Future

LOCAL = "local"  # --dask local: a LocalCluster on this machine, closed after
ONE_FILE = (".parquet", ".csv")  # an output path with another ending is a folder of parts
PART = "part-{:05d}.parquet"
CONNECT_TIMEOUT = "20s"


@dataclass(frozen=True)
class Partition:
    """One unit of work: a row group of a file, or a whole file of a folder."""

    index: int  # its place in the input's row order; names its part file
    path: Path
    row_groups: list[int] | None  # None: every row group of the file
    offset: int  # file row of its first row, so refusals name rows as without Dask
    rows: int


@dataclass(frozen=True)
class PartitionDone:
    """What a worker did with one partition; a refusal comes back as its one line."""

    rows: int
    flagged: int
    refusal: str | None = None


class DaskUnavailable(Refusal):
    """The Dask scheduler named by ``--dask`` cannot be reached."""


class PartitionRefused(Refusal):
    """A worker refused its partition's rows or scores; nothing was written."""


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


def score_partition(
    detector: AnomalyDetector, part: Partition, out_file: Path, chunk_rows: int
) -> PartitionDone:
    """Score one partition in chunks into ``out_file`` (runs on a worker).

    A refusal is returned, not raised: our exceptions name their file and column in
    arguments that do not survive pickling, and a returned line keeps worker logs quiet.
    """
    rows = flagged = 0
    refusal: str | None = None
    writer: pq.ParquetWriter | None = None
    try:
        chunks = read_chunks(
            part.path, detector.feature_names_, chunk_rows, part.row_groups, part.offset
        )
        for other, x in chunks:
            out = scored_frame(detector, other, x, part.path, offset=part.offset + rows)
            table = pa.Table.from_pandas(out, preserve_index=False)
            writer = writer or pq.ParquetWriter(out_file, table.schema)
            writer.write_table(table)
            rows += len(out)
            flagged += int(out[FLAG_COLUMN].sum())
    except Refusal as refused:
        refusal = str(refused)
    finally:
        if writer is not None:
            writer.close()
    if refusal is not None:
        out_file.unlink(missing_ok=True)
    return PartitionDone(rows, flagged, refusal)


def score_on_dask(
    detector: AnomalyDetector,
    source: Path,
    target: Path,
    chunk_rows: int,
    address: str,
    local_workers: int = 2,
    progress: bool = True,
) -> ScoredFile:
    """Score ``source`` on the Dask cluster at ``address`` (``local``: start one).

    The scores equal :func:`anomalyflow.scoring.score_file`'s: the same chunks of the
    same row groups go through the same detector.

    Raises:
        InputError: bad input (as without Dask), or an output folder that holds other files.
        PartitionRefused: a partition's rows or scores were refused; nothing was written.
        DaskUnavailable: the scheduler cannot be reached.
    """
    started = time.perf_counter()
    source, target = source.resolve(), target.resolve()  # workers may run elsewhere
    parts = partitions(source, detector.feature_names_)
    one_file = target.suffix.lower() in ONE_FILE
    if not one_file:
        _check_folder_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(SUFFIX, f".{target.name}.pid{os.getpid()}.", target.parent))
    try:
        with dask_client(address, local_workers) as client:
            model = client.scatter(detector, broadcast=True)
            futures = [
                client.submit(
                    score_partition,
                    model,
                    p,
                    staging / PART.format(p.index),
                    chunk_rows,
                    pure=False,
                )
                for p in parts
            ]
            rows, flagged = _collect(client, futures, progress)
        if one_file:
            _merge(staging, target, source)
        else:
            publish_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ScoredFile(rows, flagged, time.perf_counter() - started)


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


def _collect(
    client: Client, futures: list[Future[PartitionDone]], progress: bool
) -> tuple[int, int]:
    """Rows and flagged rows of every partition, as they finish; the first refusal
    cancels the partitions still running and is raised."""
    from distributed import as_completed

    rows = flagged = 0
    with tqdm(
        total=len(futures), unit="partition", desc="scoring on dask", disable=not progress
    ) as bar:
        for future in as_completed(futures):
            done: PartitionDone = future.result()
            if done.refusal is not None:
                client.cancel(futures)
                raise PartitionRefused(done.refusal)
            rows, flagged = rows + done.rows, flagged + done.flagged
            bar.update(1)
            bar.set_postfix(rows=rows, refresh=False)
    return rows, flagged


def _merge(staging: Path, target: Path, source: Path) -> None:
    """Concatenate the part files, in input order, into ``target`` (Parquet or CSV)."""
    parts = sorted(staging.glob("part-*.parquet"))
    with atomic_path(target) as staged:
        if target.suffix.lower() == ".csv":
            for i, part in enumerate(parts):
                pq.read_table(part).to_pandas().to_csv(staged, mode="a", header=i == 0, index=False)
            return
        writer: pq.ParquetWriter | None = None
        try:
            for part in parts:
                table = pq.read_table(part)
                writer = writer or pq.ParquetWriter(staged, table.schema)
                if not table.schema.equals(writer.schema):
                    raise InputError(
                        source, None, "its files differ in columns; write a folder output"
                    )
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()


def _check_folder_target(target: Path) -> None:
    """A folder output may replace an earlier one, never a file or someone's folder."""
    if target.is_dir():
        strangers = [p for p in target.iterdir() if not p.match("part-*.parquet")]
        if strangers:
            raise InputError(
                target,
                None,
                f"exists and holds {strangers[0].name}, not scored parts; choose a new folder",
            )
    elif target.exists():
        raise InputError(
            target, None, "exists and is not a folder (a .parquet or .csv output is one file)"
        )
