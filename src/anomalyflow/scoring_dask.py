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

import os
import shutil
import tempfile
import time
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
from anomalyflow.partitions import Partition, dask_client, partitions
from anomalyflow.scoring import FLAG_COLUMN, ScoredFile, read_chunks, scored_frame

if TYPE_CHECKING:
    from distributed import Client, Future

ONE_FILE = (".parquet", ".csv")  # an output path with another ending is a folder of parts
PART = "part-{:05d}.parquet"


@dataclass(frozen=True)
class PartitionDone:
    """What a worker did with one partition; a refusal comes back as its one line."""

    rows: int
    flagged: int
    refusal: str | None = None


class PartitionRefused(Refusal):
    """A worker refused its partition's rows or scores; nothing was written."""


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
    if target == source:
        raise InputError(target, None, "is the file being scored; write the scores elsewhere")
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
