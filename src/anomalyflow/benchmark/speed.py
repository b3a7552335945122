"""Throughput and memory figures, each beside a baseline measured in the same process."""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from anomalyflow.benchmark.protocol import make_split
from anomalyflow.data.loaders import read_npz
from anomalyflow.detector import SCORE_BATCH, AnomalyDetector, DetectorSettings
from anomalyflow.device import autocast
from anomalyflow.params import BenchmarkParams


class BesideBareForward:
    """Figures that put a scoring speed beside the bare network's, timed in one process.

    Scoring reads, scales and writes around the network; the ratio says how much of the
    network's own speed survives that (``anomalyflow benchmark``'s target is 0.8).
    """

    if TYPE_CHECKING:  # fields, or properties, of the figures that share this

        @property
        def scoring_rows_per_second(self) -> float: ...

        @property
        def bare_forward_rows_per_second(self) -> float: ...

    @property
    def scoring_to_forward_ratio(self) -> float:
        """Share of the bare network's speed that scoring keeps."""
        return self.scoring_rows_per_second / self.bare_forward_rows_per_second


@dataclass(frozen=True)
class SpeedReport(BesideBareForward):
    """Figures printed by ``anomalyflow benchmark`` and stored in its JSON."""

    dataset: str
    pretrain_rows_per_second: float
    scoring_rows_per_second: float
    bare_forward_rows_per_second: float
    fit_score_dataset: str
    fit_score_rows: int
    fit_score_peak_memory_mib: float
    fit_score_seconds: float


def measure(
    paths: list[Path], settings: DetectorSettings, params: BenchmarkParams, params_path: Path
) -> SpeedReport:
    """Pretrain and scoring throughput on the largest (capped) set; fit-score memory.

    ``params_path`` is handed to the ``fit-score`` child so it trains as configured.
    """
    row_cap, test_size, scoring_rows = params.row_cap, params.test_size, params.scoring_rows
    sizes = {p: int(np.load(p, allow_pickle=False)["y"].shape[0]) for p in paths}
    largest = max(sizes, key=lambda p: sizes[p])
    table = read_npz(largest, require_labels=True)
    assert table.y is not None
    split = make_split(table.x, table.y, 0.0, 0, row_cap, test_size)
    quiet = replace(settings, runtime=replace(settings.runtime, progress=False))
    detector = AnomalyDetector(quiet).pretrain(split.x_train)
    pretrain_speed = detector.stats_["pretrain"].rows_per_second

    rows = np.resize(split.x_test, (scoring_rows, split.x_test.shape[1]))
    detector.decision_function(rows[:SCORE_BATCH])  # warm-up
    started = time.perf_counter()
    detector.decision_function(rows)
    scoring_speed = scoring_rows / (time.perf_counter() - started)
    assert detector.scaler_ is not None
    network = detector.network()
    scaled = torch.from_numpy(detector.scaler_.transform(rows))
    device = next(network.parameters()).device  # where decision_function put it
    with torch.inference_mode(), autocast(device):
        network(scaled[:SCORE_BATCH].to(device)).cpu()  # warm-up, as for scoring
        started = time.perf_counter()
        for chunk in scaled.split(SCORE_BATCH):
            network(chunk.to(device)).float().cpu()  # .cpu() waits for a GPU to finish
        forward_speed = scoring_rows / (time.perf_counter() - started)

    memory, seconds, fit_rows = _fit_score_peak_memory(table.x, table.y, test_size, params_path)
    return SpeedReport(
        largest.stem,
        pretrain_speed,
        scoring_speed,
        forward_speed,
        largest.stem,
        fit_rows,
        memory,
        seconds,
    )


def _fit_score_peak_memory(
    x: np.ndarray, y: np.ndarray, test_size: float, params_path: Path
) -> tuple[float, float, int]:
    """Run ``anomalyflow fit-score`` on the full (uncapped) set in a child process."""
    split = make_split(x, y, 0.05, 0, len(y), test_size)
    with tempfile.TemporaryDirectory() as folder:
        train, test = Path(folder) / "train.npz", Path(folder) / "test.npz"
        np.savez(train, X=split.x_train, y=split.y_partial)
        np.savez(test, X=split.x_test)
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "anomalyflow",
                "fit-score",
                "--train",
                str(train),
                "--test",
                str(test),
                "--out",
                str(Path(folder) / "s.npy"),
                "--params",
                str(params_path),
            ],
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak_kib / 1024.0, seconds, len(split.y_partial)
