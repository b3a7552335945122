"""The README's main job and the evaluation interfaces, end to end through the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from anomalyflow.benchmark.peers import BEST_PEER, optional_peers
from anomalyflow.benchmark.protocol import make_split
from anomalyflow.cli import app
from anomalyflow.params import load_params
from anomalyflow.pipeline.production import project_registry
from anomalyflow.serving.graph import GRAPH_FILE, GRAPH_SHA256
from tests.conftest import adbench, make_blobs

SMALL_WITH_GRAPH = """
synthetic: {history_rows: 6000, recent_rows: 4000, holdout_rows: 3000, fraud_rate: 0.02,
            label_coverage: 0.6}
model: {hidden_dim: 64, embedding_dim: 16, head_hidden_dim: 16}
pretrain: {max_epochs: 6, max_steps: 150}
finetune: {frozen_epochs: 2, max_epochs: 5, max_steps: 150}
evaluation: {bootstrap_samples: 50}
benchmark: {scoring_rows: 20000}
runtime: {progress: false}
"""
# Tests but the main job's register without the ONNX graph: its export costs seconds.
SMALL = SMALL_WITH_GRAPH + "serving: {onnx: false}\n"

runner = CliRunner()


def _digest(folder: Path) -> dict[str, str]:
    """Every artifact's hash; the run lock (who ran last, and when) is no artifact."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".run.lock"
    }


def test_run_trains_evaluates_and_refuses_a_bad_batch_without_changes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    webhook: tuple[str, list[dict[str, object]]],
) -> None:
    monkeypatch.chdir(tmp_path)
    url, events = webhook
    Path("params.yaml").write_text(SMALL_WITH_GRAPH + f"notify: {{webhook_url: '{url}'}}\n")

    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    production = project_registry(load_params("params.yaml")).production()
    assert production is not None  # promoted after the smoke test scored through the graph
    lineage = json.loads((production.path / "decision.json").read_text())["lineage"]
    graph = (production.detector_dir / GRAPH_FILE).read_bytes()
    assert lineage[GRAPH_SHA256] == hashlib.sha256(graph).hexdigest()
    assert [e["event"] for e in events] == ["promoted"]  # one event, naming the version
    assert events[0]["version"] and events[0]["review_page"]
    implication = json.loads(Path("artifacts/decision.json").read_text())["threshold_implication"]
    # 1% of rows flagged against a 2% anomaly rate: half the anomalies at most, and said.
    assert implication["alerts_per_10k"] == pytest.approx(100)
    assert 0 < implication["recall_ceiling"] < 1 and implication["lines"][0] in result.output
    page = Path(events[0]["review_page"]).read_text()
    assert "id='threshold'" in page
    assert "auprc" in result.output and "Time per step" in result.output
    evaluation = json.loads(Path("artifacts/evaluation.json").read_text())
    assert evaluation["rows"] == 3000
    assert evaluation["auroc"] > 0.85
    assert (Path("artifacts/candidate") / "weights.safetensors").exists()
    assert "Decision: promoted" in result.output
    assert list(Path("artifacts/runs").iterdir()) == []  # the run's own folder went with it

    before = _digest(Path("artifacts"))
    recent = pd.read_parquet("data/recent.parquet")
    recent.loc[5, "amount"] = np.nan
    recent.to_parquet("data/recent.parquet")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "recent.parquet" in result.output and "'amount'" in result.output
    assert "expect_column_values_to_not_be_null" in result.output
    assert _digest(Path("artifacts")) == before
    quarantined = list(Path("data/quarantine").glob("recent-*/recent.parquet"))
    assert len(quarantined) == 1  # a copy: the user's file stays where it was, unchanged
    assert quarantined[0].read_bytes() == Path("data/recent.parquet").read_bytes()


def test_threshold_is_refitted_without_retraining(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(SMALL)
    assert runner.invoke(app, ["run"]).exit_code == 0
    weights = Path("artifacts/candidate/weights.safetensors").read_bytes()
    Path("params.yaml").write_text(SMALL + "threshold: {method: alert_rate, alert_rate: 0.1}\n")

    result = runner.invoke(app, ["threshold", "--data", "data/holdout.parquet"])

    assert result.exit_code == 0, result.output
    assert Path("artifacts/candidate/weights.safetensors").read_bytes() == weights
    meta = json.loads(Path("artifacts/candidate/detector.json").read_text())
    assert (
        "alert_rate" in result.output
        and meta["threshold"]
        < json.loads(Path("artifacts/evaluation.json").read_text())["threshold"]
    )


@pytest.mark.parametrize("name", ["6_cardio", "38_thyroid"])
def test_fit_score_on_real_data_ranks_anomalies_well_above_chance(
    name: str, tmp_path: Path
) -> None:
    data = np.load(adbench(name))
    split = make_split(data["X"], data["y"], 0.05, seed=0, row_cap=10_000, test_size=0.3)
    np.savez(tmp_path / "train.npz", X=split.x_train, y=split.y_partial)
    np.savez(tmp_path / "test.npz", X=split.x_test)
    (tmp_path / "params.yaml").write_text("runtime: {progress: false}\n")

    result = runner.invoke(
        app,
        [
            "fit-score",
            "--train",
            str(tmp_path / "train.npz"),
            "--test",
            str(tmp_path / "test.npz"),
            "--out",
            str(tmp_path / "scores.npy"),
            "--params",
            str(tmp_path / "params.yaml"),
        ],
    )

    assert result.exit_code == 0, result.output
    scores = np.load(tmp_path / "scores.npy")
    assert scores.shape == (len(split.x_test),)
    assert roc_auc_score(split.y_test, scores) > 0.8


def test_benchmark_reports_every_method_on_identical_splits(tmp_path: Path) -> None:
    for seed in (1, 2):
        x, y = make_blobs(rows=700, seed=seed)
        np.savez(tmp_path / f"blobs{seed}.npz", X=x, y=y)
    (tmp_path / "params.yaml").write_text(SMALL)

    command = [
        "benchmark",
        str(tmp_path / "blobs1.npz"),
        str(tmp_path / "blobs2.npz"),
        "--label-ratio",
        "0.1",
        "--seeds",
        "1",
        "--out",
        str(tmp_path / "out"),
        "--params",
        str(tmp_path / "params.yaml"),
    ]
    result = runner.invoke(app, command)

    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "out" / "benchmark-ratio-0.1.json").read_text())
    methods = set(payload["summary"]["methods"])
    base = {
        "anomalyflow",
        "anomalyflow_scratch",
        "isolation_forest",
        "ecod",
        "hist_gradient_boosting",
        "catboost",
        "logistic_regression",
    }
    installed = set(optional_peers().run)  # XGBOD, DevNet, PReNet where their library is
    assert methods == base | installed | {BEST_PEER}
    assert len(payload["outcomes"]) == 2 * len(methods)
    assert payload["speed"]["scoring_to_forward_ratio"] > 0
    assert payload["speed"]["fit_score_peak_memory_mib"] > 0
    assert (tmp_path / "out" / "benchmark-ratio-0.1.png").stat().st_size > 1000
    assert "MEAN" in result.output and "rows/s" in result.output

    # The same command with --resume reuses every journaled unit: nothing is fitted again.
    again = runner.invoke(app, [*command, "--resume", "--no-speed"])
    assert again.exit_code == 0, again.output
    resumed = json.loads((tmp_path / "out" / "benchmark-ratio-0.1.json").read_text())
    assert resumed["outcomes"] == payload["outcomes"]  # fit seconds too: none re-ran

    # Another budget cannot resume this run's journal; it refuses and leaves the report.
    (tmp_path / "out" / "benchmark-labels-3.jsonl").write_bytes(
        (tmp_path / "out" / "benchmark-ratio-0.1.jsonl").read_bytes()
    )
    other = runner.invoke(app, [*command, "--labels", "3", "--resume", "--no-speed"])
    assert other.exit_code == 2 and "budget" in other.output
    assert not (tmp_path / "out" / "benchmark-labels-3.json").exists()


def register_a_refit_copy(production: str) -> str:
    """The run's candidate with its threshold refit at another alert rate, registered
    beside ``production`` (a version of its own, without training another)."""
    import shutil

    import numpy as np

    from anomalyflow.cli.registry import open_configured_registry
    from anomalyflow.params import load_params
    from tests.conftest import decision_record

    registry = open_configured_registry(load_params("params.yaml"))
    refit = Path(shutil.copytree("artifacts/candidate", "refit"))
    Path("refit.yaml").write_text(
        Path("params.yaml").read_text() + "threshold: {alert_rate: 0.05}\n"
    )
    refitted = runner.invoke(
        app,
        [
            "threshold",
            "--data",
            "data/holdout.parquet",
            "--model",
            "refit",
            "--params",
            "refit.yaml",
        ],
    )
    assert refitted.exit_code == 0, refitted.output
    smoke = np.load(registry.get(production).path / "smoke.npy")
    return registry.register(refit, decision_record(), smoke).version
