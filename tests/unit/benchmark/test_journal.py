"""A benchmark killed half-way resumes from its journal; a journal of another run is refused."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from anomalyflow.benchmark.journal import Journal, JournalRefused
from anomalyflow.benchmark.protocol import Budget, Outcome
from anomalyflow.benchmark.runner import Unit, run_benchmark, run_description
from anomalyflow.data.schema import InputError
from anomalyflow.detector import DetectorSettings
from tests.conftest import make_blobs

NAMES = ["isolation_forest", "logistic_regression"]  # cheap, seeded: equal on every run
BUDGET = Budget(label_ratio=0.1, labels=None, row_cap=10_000, test_size=0.3)


@pytest.fixture
def units(tmp_path: Path) -> list[Unit]:
    paths = []
    for seed in (1, 2):
        x, y = make_blobs(rows=400, seed=seed)
        paths.append(tmp_path / f"blobs{seed}.npz")
        np.savez(paths[-1], X=x, y=y)
    return [(path, seed) for path in paths for seed in range(2)]


def _run(
    units: list[Unit], settings: DetectorSettings, path: Path, resume: bool, jobs: int = 1
) -> tuple[list[Outcome], list[str]]:
    description = run_description(sorted({p for p, _ in units}), settings, BUDGET, NAMES)
    journal = Journal.start(path, description, resume)
    ran: list[str] = []
    outcomes = run_benchmark(
        units, settings, BUDGET, NAMES, journal, jobs, lambda u: ran.append(u[0].dataset)
    )
    return outcomes, ran


def test_a_killed_run_resumes_with_only_the_units_it_had_not_finished(
    units: list[Unit], fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    journal = tmp_path / "out" / "benchmark-ratio-0.1.jsonl"
    complete, ran = _run(units, fast_settings, journal, resume=False)
    assert len(ran) == 4 and len(complete) == 4 * len(NAMES)
    header, first, second, *_ = journal.read_text().splitlines()
    journal.write_text(f"{header}\n{first}\n{second}\n{second[:40]}")  # killed mid-write

    resumed, ran = _run(units, fast_settings, journal, resume=True)

    assert len(ran) == 2  # the two units the kill lost, and no others
    assert [(o.dataset, o.seed, o.method) for o in resumed] == [
        (o.dataset, o.seed, o.method) for o in complete
    ]
    assert [o.auprc for o in resumed] == [o.auprc for o in complete]
    assert len(journal.read_text().splitlines()) == 5  # header and four whole units


def test_parallel_jobs_give_the_outcomes_of_one_job(
    units: list[Unit], fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    one, _ = _run(units, fast_settings, tmp_path / "one.jsonl", resume=False)
    two, ran = _run(units, fast_settings, tmp_path / "two.jsonl", resume=False, jobs=2)
    assert len(ran) == 4
    assert [(o.dataset, o.seed, o.method, o.auprc) for o in two] == [
        (o.dataset, o.seed, o.method, o.auprc) for o in one
    ]


def test_with_jobs_each_unit_is_journaled_as_it_ends_not_with_the_last(
    fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    small, large = tmp_path / "small.npz", tmp_path / "large.npz"
    budget = replace(BUDGET, row_cap=60_000)
    for path, rows in ((small, 300), (large, budget.row_cap)):
        x, y = make_blobs(rows=rows, features=12, seed=rows)
        np.savez(path, X=x, y=y)
    # CatBoost's 1000 rounds: seconds on the large set, well beyond the jitter of starting
    # a worker on a loaded machine; under a second on the small one.
    names = ["catboost"]
    units = [(large, 0), (small, 0)]
    journal = Journal.start(tmp_path / "run.jsonl", {}, resume=False)
    ended: list[tuple[str, float]] = []
    run_benchmark(
        units,
        fast_settings,
        budget,
        names,
        journal,
        2,
        lambda unit: ended.append((unit[0].dataset, time.monotonic())),
    )
    (first, first_at), (second, second_at) = ended
    assert (first, second) == ("small", "large")
    assert second_at - first_at > 2.0  # the small unit was on disk while the large one ran


def test_without_resume_a_journal_with_finished_units_is_refused_not_replaced(
    units: list[Unit], fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    journal = tmp_path / "run.jsonl"
    _run(units, fast_settings, journal, resume=False)
    before = journal.read_bytes()
    with pytest.raises(JournalRefused, match="--resume"):
        _run(units, fast_settings, journal, resume=False)
    assert journal.read_bytes() == before


@pytest.mark.parametrize("change", ["budget", "settings", "data", "code"])
def test_resuming_another_runs_journal_is_refused_and_leaves_it(
    units: list[Unit], fast_settings: DetectorSettings, tmp_path: Path, change: str
) -> None:
    journal = tmp_path / "run.jsonl"
    _run(units, fast_settings, journal, resume=False)
    before = journal.read_bytes()
    description = run_description(sorted({p for p, _ in units}), fast_settings, BUDGET, NAMES)
    if change == "budget":
        description = run_description(
            sorted({p for p, _ in units}), fast_settings, replace(BUDGET, labels=5), NAMES
        )
    elif change == "settings":
        other = replace(fast_settings, finetune=replace(fast_settings.finetune, max_epochs=3))
        description = run_description(sorted({p for p, _ in units}), other, BUDGET, NAMES)
    elif change == "code":  # as recorded by a checkout whose sources differ
        description = description | {"code": "0" * 64}
    else:
        x, y = make_blobs(rows=400, seed=9)
        np.savez(units[0][0], X=x, y=y)
        description = run_description(sorted({p for p, _ in units}), fast_settings, BUDGET, NAMES)

    with pytest.raises(JournalRefused, match=change):
        Journal.start(journal, description, resume=True)
    assert journal.read_bytes() == before


def test_a_damaged_line_before_the_last_is_refused(
    units: list[Unit], fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    journal = tmp_path / "run.jsonl"
    _run(units, fast_settings, journal, resume=False)
    lines = journal.read_text().splitlines()
    lines[2] = json.dumps({"outcomes": [{"dataset": "blobs1"}]})  # fields missing
    journal.write_text("\n".join(lines) + "\n")
    with pytest.raises(JournalRefused, match="line 3"):
        _run(units, fast_settings, journal, resume=True)


def test_with_jobs_a_refused_unit_stops_the_run_with_its_own_message(
    units: list[Unit], fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.npz"
    np.savez(broken, X=np.zeros((400, 6)))  # no labels: refused as it loads, in a worker
    journal = tmp_path / "run.jsonl"

    with pytest.raises(InputError) as refused:  # not a pool "terminated abruptly"
        _run([*units, (broken, 0)], fast_settings, journal, resume=False, jobs=2)

    assert (refused.value.path, refused.value.column) == (broken, "y")
    finished = [json.loads(line) for line in journal.read_text().splitlines()[1:]]
    assert {line["outcomes"][0]["dataset"] for line in finished} <= {"blobs1", "blobs2"}
