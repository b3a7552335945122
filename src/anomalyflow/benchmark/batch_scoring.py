"""Batch-scoring figures (issue #5), beside the bare forward pass of the same network.

``measure_batch_scoring`` scores a generated Parquet file with :func:`score_file` in a
child process, whose peak resident memory is read from the kernel when it exits. The
served-model figures are in :mod:`anomalyflow.benchmark.serving`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from anomalyflow.benchmark.serving import production_version, resample
from anomalyflow.benchmark.speed import BesideBareForward
from anomalyflow.detector import SCORE_BATCH, AnomalyDetector
from anomalyflow.registry.store import Registry

MEMORY_TARGET_MIB = 1024.0  # batch scoring peak memory target of issue #5
GENERATION_CHUNK_ROWS = 250_000  # rows generated and written at a time
ID_COLUMN = "transaction_id"


@dataclass(frozen=True)
class BatchScoringFigures(BesideBareForward):
    """``score_file`` on a generated Parquet file beside the bare forward pass."""

    version: str
    rows: int
    output_rows: int
    flagged: int
    chunk_rows: int
    file_mib: float
    scoring_seconds: float
    child_seconds: float
    peak_memory_mib: float
    bare_forward_rows: int
    bare_forward_rows_per_second: float

    @property
    def scoring_rows_per_second(self) -> float:
        """Rows/s of ``score_file`` alone (reading, scaling, the network, writing)."""
        return self.rows / self.scoring_seconds

    @property
    def memory_target_met(self) -> bool:
        return self.peak_memory_mib < MEMORY_TARGET_MIB


def measure_batch_scoring(
    registry: Registry,
    rows: int,
    chunk_rows: int,
    forward_rows: int = 200_000,
    folder: Path | None = None,
) -> BatchScoringFigures:
    """Generate a ``rows``-row Parquet file, score it in a child, time the bare network.

    The file holds an id column and the production model's features, resampled from the
    version's smoke batch (held-out rows) with a little noise so values do not repeat;
    it is written ``GENERATION_CHUNK_ROWS`` at a time, so generating it stays in bounded
    memory. The child runs :func:`score_file` with as many torch threads as this
    process; its peak RSS covers everything it does (imports, model, chunks, writer).
    The bare forward pass runs the same network on ``forward_rows`` already-scaled rows
    held in memory, in the batches ``decision_function`` uses.

    Args:
        folder: where the input and output files go (a temporary folder by default,
            removed afterwards).
    """
    version = production_version(registry)
    detector = AnomalyDetector.load(version.detector_dir)
    smoke = np.load(version.smoke_batch)
    forward_rows = min(forward_rows, rows)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        source, target = Path(scratch) / "batch.parquet", Path(scratch) / "scored.parquet"
        _write_batch(source, smoke, detector.feature_names_, rows)
        file_mib = source.stat().st_size / 2**20
        forward_speed = _bare_forward(detector, resample(smoke, forward_rows, seed=1))
        result_file = Path(scratch) / "result.json"
        started = time.perf_counter()
        peak_kib = _run_child(
            _child_command(version.detector_dir, source, target, chunk_rows, result_file),
            Path(scratch) / "child.log",
        )
        child_seconds = time.perf_counter() - started
        result = json.loads(result_file.read_text())
        output_rows = pq.ParquetFile(target).metadata.num_rows
    return BatchScoringFigures(
        version=version.version,
        rows=rows,
        output_rows=output_rows,
        flagged=int(result["flagged"]),
        chunk_rows=chunk_rows,
        file_mib=file_mib,
        scoring_seconds=float(result["seconds"]),
        child_seconds=child_seconds,
        peak_memory_mib=peak_kib / 1024.0,
        bare_forward_rows=forward_rows,
        bare_forward_rows_per_second=forward_speed,
    )


def score_in_child(argv: Sequence[str]) -> None:
    """The child's side: ``DETECTOR SOURCE TARGET CHUNK_ROWS THREADS RESULT_JSON``."""
    from anomalyflow.scoring import score_file

    detector_dir, source, target, chunk_rows, threads, result_file = argv
    torch.set_num_threads(int(threads))
    detector = AnomalyDetector.load(Path(detector_dir))
    done = score_file(detector, Path(source), Path(target), int(chunk_rows), progress=False)
    Path(result_file).write_text(
        json.dumps({"rows": done.rows, "flagged": done.flagged, "seconds": done.seconds})
    )


def _child_command(
    detector_dir: Path, source: Path, target: Path, chunk_rows: int, result_file: Path
) -> list[str]:
    """The command line that runs :func:`score_in_child` with this process's torch threads."""
    return [
        sys.executable,
        "-c",
        "import sys; from anomalyflow.benchmark.batch_scoring import score_in_child; "
        "score_in_child(sys.argv[1:])",
        str(detector_dir),
        str(source),
        str(target),
        str(chunk_rows),
        str(torch.get_num_threads()),
        str(result_file),
    ]


def _write_batch(path: Path, smoke: np.ndarray, features: tuple[str, ...], rows: int) -> None:
    schema = pa.schema([(ID_COLUMN, pa.int64()), *((name, pa.float64()) for name in features)])
    with pq.ParquetWriter(path, schema) as writer:
        for seed, start in enumerate(range(0, rows, GENERATION_CHUNK_ROWS)):
            count = min(GENERATION_CHUNK_ROWS, rows - start)
            x = resample(smoke, count, seed=100 + seed).astype(np.float64)
            columns = [pa.array(np.arange(start, start + count, dtype=np.int64))]
            columns += [pa.array(x[:, j]) for j in range(x.shape[1])]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def _bare_forward(detector: AnomalyDetector, rows: np.ndarray) -> float:
    """Rows/s of the network alone on scaled rows already in memory (CPU, no I/O)."""
    assert detector.scaler_ is not None
    network = detector.network().cpu()
    scaled = torch.from_numpy(detector.scaler_.transform(rows))
    with torch.inference_mode():
        network(scaled[:SCORE_BATCH])  # warm-up
        started = time.perf_counter()
        for chunk in scaled.split(SCORE_BATCH):
            network(chunk)
        return len(rows) / (time.perf_counter() - started)


def _run_child(command: list[str], log: Path) -> int:
    """Run ``command`` to completion; its peak RSS in KiB (a failure raises with its log)."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not all
    process.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"batch scoring child failed ({code}): {log.read_text()[-2000:]}")
    return int(usage.ru_maxrss)  # KiB on Linux
