"""`anomalyflow score --dask`: partitions scored on a real Dask cluster of 2 worker processes.

The first test starts its own cluster (``--dask local``); the others share one started
here and reach it by its ``tcp://`` address, as a user reaches an existing cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app
from anomalyflow.registry.store import Registry
from tests.conftest import decision_record, make_blobs

runner = CliRunner()
FEATURES = [f"x{i}" for i in range(6)]


@pytest.fixture(scope="module")
def cluster_address() -> Iterator[str]:
    """A LocalCluster of 2 worker processes, one thread each, on loopback."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved_detectors: list[Path]) -> str:
    """A registered version in ./.bentoml; chunks of 700 rows cut across row groups."""
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(
        "runtime: {progress: false}\nserving: {chunk_rows: 700}\n"
        "registry: {model_name: blobs-detector}\norchestration: {dask_workers: 2}\n"
    )
    registry = Registry(Path(".bentoml"), "blobs-detector")
    smoke = make_blobs(rows=16, seed=4)[0]
    return registry.register(saved_detectors[1], decision_record(), smoke).version


def _frame(rows: int, seed: int, first_id: int = 0) -> pd.DataFrame:
    x = make_blobs(rows=rows, seed=seed)[0]
    return pd.DataFrame(x, columns=FEATURES).assign(event_id=np.arange(first_id, first_id + rows))


def _write(frame: pd.DataFrame, path: Path, row_group_rows: int = 500) -> None:
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_rows
    )


def _score(version: str, source: str, target: str, *dask: str) -> tuple[int, str]:
    done = runner.invoke(
        app, ["score", "--input", source, "--output", target, "--model", version, *dask]
    )
    return done.exit_code, done.output


def _last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def _assert_same_scores(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == ["event_id", "score", "is_anomaly"]
    assert got.event_id.tolist() == expected.event_id.tolist()
    np.testing.assert_allclose(got.score, expected.score, rtol=1e-5, atol=1e-5)
    assert got.is_anomaly.tolist() == expected.is_anomaly.tolist()


def test_local_cluster_scores_row_groups_as_one_process_does(version: str) -> None:
    _write(_frame(2300, seed=8), Path("batch.parquet"))  # 5 row groups, the last short
    assert pq.ParquetFile("batch.parquet").num_row_groups == 5

    assert _score(version, "batch.parquet", "single.parquet")[0] == 0
    code, output = _score(version, "batch.parquet", "dask.parquet", "--dask", "local")

    assert code == 0, output
    _assert_same_scores(pd.read_parquet("dask.parquet"), pd.read_parquet("single.parquet"))


def test_a_folder_of_files_scores_into_one_file_or_a_folder_of_parts(
    version: str, cluster_address: str
) -> None:
    frames = [_frame(rows, seed, first) for rows, seed, first in ((900, 1, 0), (40, 2, 900))]
    frames.append(_frame(1100, 3, 940))
    Path("batches").mkdir()
    for i, frame in enumerate(frames):
        _write(frame, Path(f"batches/day-{i}.parquet"))
    _write(pd.concat(frames), Path("all.parquet"))
    assert _score(version, "all.parquet", "single.parquet")[0] == 0
    expected = pd.read_parquet("single.parquet")

    code, output = _score(version, "batches", "scored", "--dask", cluster_address)
    assert code == 0, output
    parts = sorted(Path("scored").iterdir())
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(3)]
    _assert_same_scores(pd.concat(pd.read_parquet(p) for p in parts), expected)

    code, output = _score(version, "batches", "scored.csv", "--dask", cluster_address)
    assert code == 0, output
    _assert_same_scores(pd.read_csv("scored.csv"), expected)
    # Scoring again replaces the earlier folder of parts whole.
    assert _score(version, "batches", "scored", "--dask", cluster_address)[0] == 0
    assert sorted(Path("scored").iterdir()) == parts


def test_a_bad_value_in_one_partition_is_refused_as_without_dask_and_changes_nothing(
    version: str, cluster_address: str
) -> None:
    Path("batches").mkdir()
    for i in range(3):
        _write(_frame(600, seed=i, first_id=600 * i), Path(f"batches/day-{i}.parquet"))
    assert _score(version, "batches", "scored", "--dask", cluster_address)[0] == 0
    before = {p.name: p.read_bytes() for p in Path("scored").iterdir()}
    bad = _frame(2300, seed=2)
    bad.loc[1600, "x3"] = np.inf  # in the fourth row group, the third chunk of this file
    _write(bad, Path("batches/day-2.parquet"))

    code, single = _score(version, "batches/day-2.parquet", "one.parquet")
    assert code == 2 and not Path("one.parquet").exists()
    # The same refusal (file, column, row), the file named by its absolute path.
    refusal = _last_line(single).replace("batches/", f"{Path('batches').resolve()}/")
    for source, target in (("batches", "scored"), ("batches/day-2.parquet", "one.parquet")):
        code, output = _score(version, source, target, "--dask", cluster_address)
        assert (code, _last_line(output)) == (2, refusal)
    assert {p.name: p.read_bytes() for p in Path("scored").iterdir()} == before
    assert not Path("one.parquet").exists()
    assert not [p for p in Path(".").iterdir() if p.name.startswith((".scored", ".one"))]

    bad.to_csv("batch.csv", index=False)
    assert _score(version, "batch.csv", "out.parquet", "--dask", cluster_address)[0] == 2
    Path("stranger").mkdir()
    Path("stranger/notes.txt").write_text("mine")
    assert _score(version, "batches", "stranger", "--dask", cluster_address)[0] == 2
    assert [p.name for p in Path("stranger").iterdir()] == ["notes.txt"]


def test_the_scores_never_replace_the_file_they_score(version: str, cluster_address: str) -> None:
    _write(_frame(900, seed=1), Path("batch.parquet"))
    before = Path("batch.parquet").read_bytes()

    code, output = _score(version, "batch.parquet", "./batch.parquet", "--dask", cluster_address)

    assert code == 2, output
    assert Path("batch.parquet").read_bytes() == before
