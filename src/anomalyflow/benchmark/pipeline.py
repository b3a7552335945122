"""Pipeline figures: validation and drift throughput on a large batch, and how much a
rerun with nothing changed costs next to the first run (measured in the same call)."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from anomalyflow.data import synthetic
from anomalyflow.drift.report import detect_drift
from anomalyflow.params import Params
from anomalyflow.pipeline.data import SYNTHETIC_SCHEMA
from anomalyflow.validation.suite import build_suite, validate_batch


@dataclass(frozen=True)
class PipelineFigures:
    """What ``anomalyflow pipeline-benchmark`` prints."""

    batch_rows: int
    validation_rows_per_second: float
    drift_rows_per_second: float
    peak_memory_mib: float
    first_run_seconds: float
    second_run_seconds: float

    @property
    def rerun_ratio(self) -> float:
        """Second run (nothing changed) over the first; the target is under 0.1."""
        return self.second_run_seconds / self.first_run_seconds


def measure_pipeline(params: Params, batch_rows: int, params_file: Path) -> PipelineFigures:
    """Validate and drift-check a ``batch_rows`` batch; run the flow twice on its data."""
    generated = synthetic.generate(replace(params.synthetic, recent_rows=batch_rows))
    batch = generated.recent
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        build_suite(root, SYNTHETIC_SCHEMA, generated.history, params.validation)
        validate_batch(root, batch.head(1000), "warm-up")
        started = time.perf_counter()
        validate_batch(root, batch, f"{batch_rows}-row batch")
        validation_speed = batch_rows / (time.perf_counter() - started)
        started = time.perf_counter()
        detect_drift(generated.history, batch, synthetic.FEATURES, params.drift, root / "drift")
        drift_speed = batch_rows / (time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    first, second = _run_twice(params_file)
    return PipelineFigures(batch_rows, validation_speed, drift_speed, peak, first, second)


def _run_twice(params_file: Path) -> tuple[float, float]:
    """Wall time of `anomalyflow run` in a fresh folder, then again with nothing changed."""
    raw = yaml.safe_load(params_file.read_text()) or {}
    raw.setdefault("runtime", {})["progress"] = False
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "params.yaml").write_text(yaml.safe_dump(raw))
        if Path("gx").is_dir():  # the committed suite, as a user's checkout has it
            shutil.copytree(
                Path("gx"), Path(folder) / "gx", ignore=shutil.ignore_patterns("uncommitted")
            )
        times = []
        for _ in range(2):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "anomalyflow", "run"],
                cwd=folder,
                check=True,
                capture_output=True,
                env=os.environ.copy(),
            )
            times.append(time.perf_counter() - started)
    return times[0], times[1]
