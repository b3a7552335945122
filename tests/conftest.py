"""Shared fixtures: small, fast settings and the optional real data sets."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from anomalyflow.detector import DetectorSettings
from anomalyflow.params import Params

# Flows under test talk to Prefect's ephemeral API with a database of their own, never
# the developer's ~/.prefect; set before any test imports prefect, removed at exit. Each
# pytest-xdist worker gets its own: two ephemeral servers on one SQLite file lock it.
if "PREFECT_HOME" not in os.environ or os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="anomalyflow-prefect-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# The ephemeral server logs its shutdown after pytest closed the captured streams.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# Each test's registry is the `.bentoml` of its own working folder, never the user's.
os.environ.pop("BENTOML_HOME", None)
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

REPO = Path(__file__).resolve().parents[1]
ADBENCH = REPO.parent / "shared" / "datasets" / "adbench"


@pytest.fixture
def fast_params() -> Params:
    """Defaults with training budgets cut so a fit takes a second or two."""
    p = Params()
    return replace(
        p,
        model=replace(p.model, hidden_dim=64, embedding_dim=16, head_hidden_dim=16),
        pretrain=replace(p.pretrain, max_epochs=8, max_steps=120),
        finetune=replace(p.finetune, frozen_epochs=2, max_epochs=6, max_steps=120, tree_rounds=50),
        runtime=replace(p.runtime, progress=False),
    )


@pytest.fixture
def fast_settings(fast_params: Params) -> DetectorSettings:
    p = fast_params
    return DetectorSettings(p.model, p.pretrain, p.finetune, p.threshold, p.runtime)


def make_blobs(
    rows: int = 2000, features: int = 6, anomaly_share: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Correlated normal rows plus anomalies that break the correlation or the range."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(rows, 2))
    mixing = rng.normal(size=(2, features))
    x = latent @ mixing + 0.1 * rng.normal(size=(rows, features))
    y = np.zeros(rows, dtype=np.int64)
    anomalies = rng.choice(rows, size=int(rows * anomaly_share), replace=False)
    y[anomalies] = 1
    half = len(anomalies) // 2
    x[anomalies[:half]] = rng.normal(scale=2.0, size=(half, features))  # break structure
    x[anomalies[half:]] += rng.choice([-4.0, 4.0], size=(len(anomalies) - half, features))
    return x.astype(np.float32), y


def adbench(name: str) -> Path:
    """A real data set from ``../shared/datasets``, or skip where it is absent."""
    path = ADBENCH / f"{name}.npz"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/datasets is not beside the project)")
    return path


@pytest.fixture(scope="session")
def saved_detectors(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two small fitted detectors saved as folders (different seeds), for registry tests."""
    from anomalyflow.detector import AnomalyDetector

    p = Params()
    settings = DetectorSettings(
        replace(p.model, hidden_dim=32, embedding_dim=8, head_hidden_dim=8),
        replace(p.pretrain, max_epochs=3, max_steps=40),
        replace(p.finetune, frozen_epochs=1, max_epochs=2, max_steps=40),
        p.threshold,
        replace(p.runtime, progress=False),
    )
    x, y = make_blobs(rows=1500)
    folders = []
    for seed in (0, 1):
        folder = tmp_path_factory.mktemp("detector") / "model"
        detector = AnomalyDetector(replace(settings, runtime=replace(settings.runtime, seed=seed)))
        detector.fit(x, y).save(folder)
        folders.append(folder)
    return folders


def decision_record(approved: bool = True, auprc: float = 0.6) -> dict[str, object]:
    """A gate decision record as `steps.gate` writes it, reduced to what the registry reads."""
    rules = [{"rule": "auprc_floor", "value": auprc, "threshold": 0.2, "passed": approved}]
    return {
        "approved": approved,
        "rules": rules,
        "candidate_metrics": {"auprc": auprc, "auroc": 0.9},
        "lineage": {"batch_md5": "0123456789abcdef", "backbone_weights_md5": "fedcba"},
        "git_commit": "abc123",
        "prefect_run_id": "run-1",
    }


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """A webhook receiver on loopback: its URL and the JSON events it got."""
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


@pytest.fixture(scope="module")
def dask_client() -> Iterator[object]:
    """Two single-threaded Dask workers in this process: no start-up, real scheduling."""
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
