"""A re-run of some methods takes the others' outcomes from an earlier run on the same splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app
from tests.conftest import make_blobs

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path) -> list[str]:
    paths = []
    for seed in (1, 2):
        x, y = make_blobs(rows=400, seed=seed)
        paths.append(str(tmp_path / f"blobs{seed}.npz"))
        np.savez(paths[-1], X=x, y=y)
    return paths


def _benchmark(data: list[str], out: Path, *options: str) -> tuple[int, dict]:
    command = ["benchmark", *data, "--label-ratio", "0", "--seeds", "2", "--no-speed"]
    result = runner.invoke(app, [*command, "--out", str(out), *options])
    report = out / "benchmark-ratio-0.json"
    return result.exit_code, json.loads(report.read_text()) if report.exists() else {}


def _by_unit(report: dict, method: str) -> dict[tuple[str, int], float]:
    return {
        (o["dataset"], o["seed"]): o["auprc"] for o in report["outcomes"] if o["method"] == method
    }


def test_the_other_methods_outcomes_come_from_the_earlier_journal(
    data: list[str], tmp_path: Path
) -> None:
    code, earlier = _benchmark(data, tmp_path / "earlier", "--methods", "isolation_forest,ecod")
    assert code == 0
    journal = tmp_path / "earlier" / "benchmark-ratio-0.jsonl"
    lines = journal.read_text().splitlines()
    for i, line in enumerate(lines[1:], start=1):  # mark ECOD's outcomes as that run's own
        unit = json.loads(line)
        for o in unit["outcomes"]:
            o["auprc"] += 0.001 if o["method"] == "ecod" else 0.0
        lines[i] = json.dumps(unit)
    journal.write_text("\n".join(lines) + "\n")

    code, again = _benchmark(
        data, tmp_path / "again", "--methods", "isolation_forest", "--peers-from", str(journal)
    )

    assert code == 0
    ecod_then = {k: v + 0.001 for k, v in _by_unit(earlier, "ecod").items()}
    assert _by_unit(again, "ecod") == pytest.approx(ecod_then)  # taken, not run again
    assert _by_unit(again, "isolation_forest") == _by_unit(earlier, "isolation_forest")
    assert again["peers_from"]["methods"] == ["ecod"]
    assert len(_by_unit(again, "ecod")) == 4


@pytest.mark.parametrize("change", ["nothing", "budget", "units", "data"])
def test_an_earlier_run_on_other_splits_is_refused_before_anything_runs(
    data: list[str], tmp_path: Path, change: str
) -> None:
    assert _benchmark(data, tmp_path / "earlier", "--methods", "isolation_forest,ecod")[0] == 0
    journal = tmp_path / "earlier" / "benchmark-ratio-0.jsonl"
    options = ["--methods", "isolation_forest", "--peers-from", str(journal)]
    command = ["benchmark", *data, "--label-ratio", "0", "--seeds", "2", "--no-speed"]
    if change == "budget":
        command[4] = "0.1"
    elif change == "nothing":
        pass
    elif change == "units":
        command[6] = "3"  # a seed the earlier run did not cut
    else:
        x, y = make_blobs(rows=400, seed=9)
        np.savez(data[0], X=x, y=y)

    out = tmp_path / "again"
    result = runner.invoke(app, [*command, "--out", str(out), *options])

    if change == "nothing":  # the same splits: reused
        assert result.exit_code == 0 and (out / "benchmark-ratio-0.json").exists()
    else:
        assert result.exit_code == 2
        assert not out.exists()  # refused before a journal was started


def test_an_unknown_method_is_refused(data: list[str], tmp_path: Path) -> None:
    code, _ = _benchmark(data, tmp_path / "out", "--methods", "isolation_forest,catboost")
    assert code == 2  # CatBoost learns from labels: not a method of the no-label budget
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mistake", ["bad labels", "same name", "no seeds"])
def test_bad_data_or_options_are_refused_before_any_unit_runs(
    data: list[str], tmp_path: Path, mistake: str
) -> None:
    last = tmp_path / "other" / ("broken.npz" if mistake == "bad labels" else "blobs1.npz")
    last.parent.mkdir()
    x, y = make_blobs(rows=400, seed=3)  # another set, but of a name already given
    np.savez(last, X=x, y=np.full(400, 2) if mistake == "bad labels" else y)  # 0 or 1 only
    files = [*data, str(last)] if mistake != "no seeds" else data

    code, report = _benchmark(
        files, tmp_path / "out", *(["--seeds", "0"] * (mistake == "no seeds"))
    )

    assert code == 2 and not report
    assert not (tmp_path / "out").exists()  # no journal: nothing ran, nothing to resume


def test_a_peer_whose_library_is_missing_is_named_only_when_it_would_have_run(
    data: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from anomalyflow.benchmark import peers

    missing = replace(peers.OPTIONAL_PEERS["xgbod"], module="anomalyflow_no_such_library")
    monkeypatch.setitem(peers.OPTIONAL_PEERS, "xgbod", missing)  # the fault: not installed
    labeled = ["benchmark", *data, "--label-ratio", "0.05", "--seeds", "1", "--no-speed"]

    asked = runner.invoke(app, [*labeled, "--out", str(tmp_path / "a"), "--methods", "xgbod"])
    other = runner.invoke(
        app, [*labeled, "--out", str(tmp_path / "b"), "--methods", "logistic_regression"]
    )

    assert asked.exit_code == 2  # was "not one of this budget's methods"
    assert not (tmp_path / "a").exists()
    assert other.exit_code == 0, other.output
    report = json.loads((tmp_path / "b" / "benchmark-ratio-0.05.json").read_text())
    assert report["skipped_peers"] == {}  # was {"xgbod": ...}, though it was not asked for
