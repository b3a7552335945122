"""The serving benchmark's figures on a tiny run: a real service, a small Parquet file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from anomalyflow.benchmark.batch_scoring import measure_batch_scoring
from anomalyflow.benchmark.serving import measure_service
from anomalyflow.registry.store import Registry, RegistryError
from tests.conftest import decision_record, make_blobs


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, saved_detectors: list[Path]) -> Registry:
    registry = Registry(tmp_path_factory.mktemp("registry") / "bentoml")
    version = registry.register(saved_detectors[0], decision_record(), make_blobs(rows=64)[0])
    # Promotion's own smoke test is covered elsewhere; here it would start a second server.
    registry.promote(version.version, lambda v: {"passed": True})
    return registry


def test_service_figures_are_sane(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("")  # serving defaults
    figures = measure_service(
        registry,
        tmp_path / "params.yaml",
        requests=50,
        concurrency=2,
        batch_records=200,
        batch_requests=3,
    )
    assert figures.version == registry.state().production
    assert 0 < figures.p50_ms <= figures.p99_ms
    assert 0 < figures.in_process_p50_ms <= figures.in_process_p99_ms
    assert figures.requests_per_second > 0 and figures.batch_rows_per_second > 0
    for ratio in (figures.latency_ratio, figures.concurrency_ratio, figures.batch_ratio):
        assert math.isfinite(ratio) and ratio > 0


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
