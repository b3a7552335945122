"""The serving benchmark's figures on a tiny run: a real service beside a bare BentoML
service, a small Parquet file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anomalyflow.benchmark.batch_scoring import measure_batch_scoring
from anomalyflow.benchmark.serving import BARE_RATIO_TARGET
from anomalyflow.cli import app
from anomalyflow.registry.store import Registry, RegistryError
from tests.conftest import decision_record, make_blobs


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, saved_detectors: list[Path]) -> Registry:
    registry = Registry(tmp_path_factory.mktemp("registry") / "bentoml")
    version = registry.register(saved_detectors[0], decision_record(), make_blobs(rows=64)[0])
    # Promotion's own smoke test is covered elsewhere; here it would start a second server.
    registry.promote(version.version, lambda v: {"passed": True})
    return registry


def test_the_command_reports_the_service_beside_a_bare_bentoml_service(
    registry: Registry, tmp_path: Path
) -> None:
    params = tmp_path / "params.yaml"  # serving defaults; the fixture's registry
    params.write_text(
        f"registry:\n  bentoml_home: {registry.home}\n  model_name: {registry.name}\n"
    )
    out = tmp_path / "serving.json"
    result = CliRunner().invoke(
        app,
        ["serving-benchmark", "--rows", "2000", "--requests", "50", "--concurrency", "2",
         "--batch-records", "200", "--out", str(out), "--params", str(params)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())["service"]
    assert figures["version"] == registry.state().production
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert 0 < figures["in_process_p50_ms"] <= figures["in_process_p99_ms"]
    assert 0 < figures["bare_p50_ms"] <= figures["bare_p99_ms"]
    assert figures["requests_per_second"] > 0 and figures["batch_rows_per_second"] > 0
    assert figures["cpu_ms"] > 0 and figures["bare_cpu_ms"] > 0  # Linux, as CI
    for name in ("latency_ratio", "concurrency_ratio", "batch_ratio", "bare_ratio"):
        assert math.isfinite(figures[name]) and figures[name] > 0
    assert figures["bare_ratio"] == pytest.approx(figures["p50_ms"] / figures["bare_p50_ms"])
    assert figures["bare_ratio_target_met"] == (figures["bare_ratio"] <= BARE_RATIO_TARGET)
    assert f"{figures['bare_ratio']:.2f}" in result.output  # the ratio is printed too


def test_batch_scoring_scores_every_row_and_reports_its_memory(
    registry: Registry, tmp_path: Path
) -> None:
    figures = measure_batch_scoring(registry, rows=20_000, chunk_rows=6_000, folder=tmp_path)
    assert figures.output_rows == figures.rows == 20_000
    assert 0 <= figures.flagged <= figures.rows
    assert figures.scoring_rows_per_second > 0 and figures.bare_forward_rows_per_second > 0
    assert math.isfinite(figures.scoring_to_forward_ratio)
    assert figures.peak_memory_mib > 0 and figures.file_mib > 0
    assert list(tmp_path.iterdir()) == []  # the generated files are gone


def test_no_production_model_is_a_registry_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no production model"):
        measure_batch_scoring(Registry(tmp_path / "bentoml"), rows=10, chunk_rows=10)
