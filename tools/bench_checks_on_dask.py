"""Benchmark: the checks of a large batch in one process and per partition on Dask.

Prints, for one generated batch, the seconds and peak memory of GX validation in one
process and on a 2-worker LocalCluster (cold and warm workers), and of Evidently drift
on the whole batch and on the bounded samples ``task_runner: dask`` uses. Each
validation runs in a fresh process so peak memory is its own. Figures go to
docs/benchmarks.md (Checks of a large batch on Dask); print ``uptime`` beside them.

    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_checks_on_dask.py --rows 2000000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

SUITE_ROWS = 20_000  # the suite is built from a random sample of the batch, so it passes


def _peak_mb() -> float:
    """This process's peak RSS. Not ``ru_maxrss``, which a child started from a large
    parent inherits; the kernel's ``VmHWM`` starts afresh with each program."""
    status = Path("/proc/self/status").read_text()
    return (
        int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
        / 1024
    )


def prepare(folder: Path, rows: int, group_rows: int) -> None:
    """Write the batch and the reference (Parquet, ``group_rows`` a row group) and a suite."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from anomalyflow.data import synthetic
    from anomalyflow.params import Params
    from anomalyflow.pipeline.data import SYNTHETIC_SCHEMA
    from anomalyflow.validation.suite import build_suite

    params = Params()
    sizes = replace(params.synthetic, history_rows=rows, recent_rows=rows, holdout_rows=1000)
    data = synthetic.generate(sizes)
    folder.mkdir(parents=True, exist_ok=True)
    sample = data.recent.sample(SUITE_ROWS, random_state=0)
    build_suite(folder, SYNTHETIC_SCHEMA, sample, params.validation)
    for name, frame in (("batch", data.recent), ("reference", data.history)):
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, folder / f"{name}.parquet", row_group_size=group_rows)


def validate_once(folder: Path, mode: str, partition_rows: int) -> None:
    """One validation of the batch, in one process or on Dask; prints seconds and memory."""
    from anomalyflow.data.loaders import read_frame
    from anomalyflow.partitions import dask_client, split
    from anomalyflow.validation.partitioned import validate_partitions
    from anomalyflow.validation.suite import validate_batch

    batch, before = folder / "batch.parquet", _peak_mb()
    if mode == "one":
        started = time.perf_counter()
        validate_batch(folder, read_frame(batch), batch)
        print(f"  one process: {time.perf_counter() - started:.1f} s, peak {_peak_mb():.0f} MB")
        return
    with dask_client("local", 2) as client:
        parts = split(batch, partition_rows) or []
        for workers in ("cold", "warm"):
            started = time.perf_counter()
            validate_partitions(folder, parts, client, batch)
            took = time.perf_counter() - started
            print(f"  2 Dask workers, {len(parts)} partitions, {workers}: {took:.1f} s")
        peaks = client.run(_peak_mb)
    listed = ", ".join(f"{mb:.0f}" for mb in peaks.values())
    print(f"  driver peak {_peak_mb():.0f} MB (imports {before:.0f} MB), workers {listed} MB")


def drift(folder: Path, sample_rows: int) -> None:
    """Evidently on the whole batch and reference, then on per-partition samples."""
    from anomalyflow.data import synthetic
    from anomalyflow.data.loaders import read_frame
    from anomalyflow.drift.report import detect_drift
    from anomalyflow.params import Params
    from anomalyflow.partitions import dask_client, sample_source

    params = Params().drift
    batch, reference = folder / "batch.parquet", folder / "reference.parquet"
    started = time.perf_counter()
    whole = detect_drift(
        read_frame(reference), read_frame(batch), synthetic.FEATURES, params, folder / "whole"
    )
    whole_s = time.perf_counter() - started
    with dask_client("local", 2) as client:
        started = time.perf_counter()
        reference_sample, _ = sample_source(client, reference, sample_rows, 0)
        batch_sample, _ = sample_source(client, batch, sample_rows, 0)
        draw_s = time.perf_counter() - started
    started = time.perf_counter()
    sampled = detect_drift(
        reference_sample, batch_sample, synthetic.FEATURES, params, folder / "sampled"
    )
    evidently_s = time.perf_counter() - started
    gap = max(abs(a.score - b.score) for a, b in zip(whole.columns, sampled.columns, strict=True))
    print(
        f"  whole {whole_s:.1f} s; samples of {sample_rows:,}: draw {draw_s:.1f} s + Evidently "
        f"{evidently_s:.1f} s (ratio {(draw_s + evidently_s) / whole_s:.2f}); largest score "
        f"gap {gap:.4f}; share drifted {whole.share_drifted:.2f} vs {sampled.share_drifted:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--group-rows", type=int, default=250_000)
    parser.add_argument("--partition-rows", type=int, default=500_000)
    parser.add_argument("--sample-rows", type=int, default=100_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/anomalyflow-bench-checks"))
    parser.add_argument("--only", choices=("prepare", "one", "dask"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only == "prepare":  # apart, so that no later process starts from its memory
        prepare(args.folder, args.rows, args.group_rows)
        return
    if args.only:  # one validation in this fresh process
        validate_once(args.folder, args.only, args.partition_rows)
        return
    subprocess.run([sys.executable, __file__, *sys.argv[1:], "--only", "prepare"], check=True)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"validation of {args.rows:,} rows in row groups of {args.group_rows:,}:")
    for mode in ("one", "dask", "one"):
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--only", mode], check=True)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"drift of {args.rows:,} batch rows against {args.rows:,} reference rows:")
    drift(args.folder, args.sample_rows)


if __name__ == "__main__":
    main()
