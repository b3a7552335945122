"""``anomalyflow benchmark-stream``: pretraining on a reference larger than memory.

A Parquet reference of many rows is written row group by row group (never whole in
memory), then pretrained on, streamed, in a fresh process whose peak resident memory is
the figure. On a sample that fits, the same settings train in memory and streamed (in
buffers of a quarter of the sample, so the streamed epochs really are cut) on the same
seed, and the two loss curves are printed side by side.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from anomalyflow.atomic import atomic_path
from anomalyflow.data.loaders import read_reference
from anomalyflow.data.reference_stream import ReferenceStream
from anomalyflow.data.schema import Schema
from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.params import load_params

_LATENT = 4  # the generated features are noisy mixtures of this many factors
_TARGET_MIB = 2048  # peak resident memory the streamed run must stay under


@dataclass(frozen=True)
class Shape:
    """What the benchmark generates: the reference, and the sample that fits in memory."""

    rows: int
    features: int
    group_rows: int
    sample_rows: int
    curve_epochs: int  # epochs of the two runs on the sample


@dataclass(frozen=True)
class StreamedRun:
    """One streamed pretraining, measured in its own process."""

    rows: int
    seconds: float
    rows_per_second: float
    peak_rss_mib: float  # the process that streams (and, with ranks, the largest rank)
    world_size: int
    final_loss: float


@dataclass(frozen=True)
class LossCurves:
    """Mean batch loss per epoch on the same sample and seed, in memory and streamed."""

    sample_rows: int
    buffer_rows: int
    in_memory: tuple[float, ...]
    streamed: tuple[float, ...]

    @property
    def largest_gap(self) -> float:
        """The largest relative difference between the curves at one epoch."""
        pairs = zip(self.in_memory, self.streamed, strict=True)
        return max(abs(a - b) / max(abs(a), 1e-12) for a, b in pairs)


def write_reference(path: Path, rows: int, features: int, group_rows: int, seed: int) -> None:
    """Write ``rows`` correlated rows to Parquet one row group at a time, atomically."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(_LATENT, features))
    names = [f"f{j}" for j in range(features)]
    schema = pa.schema([(name, pa.float32()) for name in names])
    with atomic_path(path) as partial, pq.ParquetWriter(partial, schema) as writer:
        for start in range(0, rows, group_rows):
            count = min(group_rows, rows - start)
            block = rng.normal(size=(count, _LATENT)) @ mixing
            block += 0.1 * rng.normal(size=(count, features))
            arrays = [pa.array(block[:, j].astype(np.float32)) for j in range(features)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))


def streamed_run(reference: Path, params_path: Path, batch_size: int | None) -> StreamedRun:
    """Pretrain from ``reference`` streamed, in a fresh process: its peak RSS is its own."""
    command = [sys.executable, "-m", "anomalyflow.benchmark.streaming", str(reference)]
    command += [str(params_path), str(batch_size or "")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"streamed pretraining failed:\n{done.stderr[-4000:]}")
    return StreamedRun(**json.loads(done.stdout.strip().splitlines()[-1]))


def loss_curves(sample: Path, settings: DetectorSettings) -> LossCurves:
    """Train on ``sample`` in memory, then streamed in buffers of a quarter of it."""
    schema = _schema(sample)
    x = read_reference(sample, schema).x
    buffer_rows = max(1000, len(x) // 4)
    cut = replace(settings, pretrain=replace(settings.pretrain, memory_rows=buffer_rows))
    in_memory = AnomalyDetector(settings).pretrain(x, schema.features)
    streamed = AnomalyDetector(cut).pretrain(ReferenceStream(sample, schema))
    return LossCurves(
        len(x),
        buffer_rows,
        in_memory.stats_["pretrain"].epoch_losses,
        streamed.stats_["pretrain"].epoch_losses,
    )


def benchmark_settings(params_path: Path, batch_size: int | None) -> DetectorSettings:
    """The project's settings, progress bars off, with the benchmark's batch size."""
    params = load_params(params_path)
    settings = DetectorSettings.from_params(params)
    settings = replace(settings, runtime=replace(settings.runtime, progress=False))
    if batch_size is not None:
        settings = replace(settings, pretrain=replace(settings.pretrain, batch_size=batch_size))
    return settings


def run_benchmark(
    shape: Shape,
    batch_size: int | None,
    out: Path,
    params_path: Path,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """Generate (once), pretrain streamed, compare the curves; say each figure as it comes.

    Returns:
        Every figure, with the load average before and after, for the JSON.
    """
    load_before = os.getloadavg()
    reference = out / f"reference-{shape.rows}x{shape.features}.parquet"
    started = time.perf_counter()
    if not reference.exists():  # generated once, reused by later runs
        write_reference(reference, shape.rows, shape.features, shape.group_rows, seed=0)
    echo(
        f"reference {reference}: {shape.rows:,} rows x {shape.features} features, "
        f"{reference.stat().st_size / 2**20:,.0f} MiB ({time.perf_counter() - started:.0f} s)"
    )
    run = streamed_run(reference, params_path, batch_size)
    echo(
        f"streamed pretraining: {run.rows:,} rows, peak RSS {run.peak_rss_mib:,.0f} MiB "
        f"(target < {_TARGET_MIB}: {'met' if run.peak_rss_mib < _TARGET_MIB else 'not met'}), "
        f"{run.seconds:.0f} s ({run.rows_per_second:,.0f} rows/s), world size {run.world_size}"
    )
    sample = out / f"sample-{shape.sample_rows}x{shape.features}.parquet"
    write_reference(sample, shape.sample_rows, shape.features, shape.sample_rows // 8, seed=1)
    settings = benchmark_settings(params_path, batch_size)
    pretrain = replace(settings.pretrain, max_epochs=shape.curve_epochs)
    curves = loss_curves(sample, replace(settings, pretrain=pretrain))
    echo(
        f"loss per epoch on {curves.sample_rows:,} rows, in memory vs streamed in buffers of "
        f"{curves.buffer_rows:,} rows (largest gap {curves.largest_gap:.1%}):"
    )
    for epoch, pair in enumerate(zip(curves.in_memory, curves.streamed, strict=True), 1):
        echo(f"  epoch {epoch}: {pair[0]:.4f}  {pair[1]:.4f}")
    load = {"before": load_before, "after": os.getloadavg(), "cpu_count": os.cpu_count()}
    echo(f"load average (1, 5, 15 min) before {load_before}, after {load['after']}")
    return {"load": load, "batch_size": batch_size} | asdict(run) | asdict(curves)


def _schema(path: Path) -> Schema:
    """Every column of the generated file is a feature."""
    return Schema(features=tuple(pq.read_schema(path).names))


def _main(reference: str, params_path: str, batch_size: str) -> None:
    """The fresh process: pretrain streamed, print the figures as one JSON line."""
    settings = benchmark_settings(Path(params_path), int(batch_size) if batch_size else None)
    stream = ReferenceStream(Path(reference), _schema(Path(reference)))
    started = time.perf_counter()
    detector = AnomalyDetector(settings).pretrain(stream)
    seconds = time.perf_counter() - started
    stats = detector.stats_["pretrain"]
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    run = StreamedRun(
        stream.total_rows,
        seconds,
        stream.total_rows / seconds,
        peak_kib / 1024,
        stats.world_size,
        stats.final_loss,
    )
    print(json.dumps(asdict(run)))


if __name__ == "__main__":
    _main(*sys.argv[1:4])
