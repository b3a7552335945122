"""Run state: one run at a time per artifacts folder, and what the last run remembers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from anomalyflow.errors import Refusal
from anomalyflow.params import DataParams, PathsParams
from anomalyflow.paths import ArtifactPaths
from anomalyflow.pipeline.state import (
    RunInProgress,
    RunState,
    exclusive_run,
    read_state,
    record_check,
)

# A process holding the project (argv[1]) as a run does; the tests end it abruptly.
HOLDER = (
    "import os, sys\n"
    "from pathlib import Path\n"
    "from anomalyflow.params import DataParams, PathsParams\n"
    "from anomalyflow.paths import ArtifactPaths\n"
    "from anomalyflow.pipeline.state import exclusive_run\n"
    "paths = ArtifactPaths.from_params(PathsParams(), DataParams(), root=Path(sys.argv[1]))\n"
)


def _paths(root: Path) -> ArtifactPaths:
    return ArtifactPaths.from_params(PathsParams(), DataParams(), root=root)


def test_a_second_run_in_the_same_folder_is_refused_while_the_first_holds_it(
    tmp_path: Path,
) -> None:
    paths = _paths(tmp_path)
    with exclusive_run(paths):
        with pytest.raises(RunInProgress), exclusive_run(paths):
            pass
        other = _paths(tmp_path / "elsewhere")
        with exclusive_run(other):  # another project is not held back
            pass
    with exclusive_run(paths):  # released when the first run ends
        pass


def test_the_lock_is_released_when_its_holder_dies(tmp_path: Path) -> None:
    holder = (
        HOLDER + "with exclusive_run(paths):\n"
        "    os._exit(9)\n"  # killed mid-run: no clean-up code runs
    )
    died = subprocess.run([sys.executable, "-c", holder, str(tmp_path)], check=False)
    assert died.returncode == 9
    with exclusive_run(_paths(tmp_path)):
        pass


def test_state_round_trips_and_starts_empty(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    assert read_state(paths) == RunState()
    record_check(paths, ("b", "p", "r"))
    assert read_state(paths).checked == ("b", "p", "r")


@pytest.mark.parametrize("damage", ["{{{", "[1, 2]", ""])
def test_a_damaged_state_file_is_refused_naming_it(tmp_path: Path, damage: str) -> None:
    """It was a JSONDecodeError traceback on every later run."""
    paths = _paths(tmp_path)
    record_check(paths, ("b", "p", "r"))
    paths.state.write_text(damage)

    with pytest.raises(Refusal, match=str(paths.state)):
        read_state(paths)


def test_a_waiting_run_starts_once_the_first_ends(tmp_path: Path) -> None:
    import threading
    import time

    paths = _paths(tmp_path)
    order: list[str] = []
    holding = threading.Event()

    def first() -> None:
        with exclusive_run(paths):
            holding.set()
            time.sleep(0.5)
            order.append("first done")

    worker = threading.Thread(target=first)
    worker.start()
    holding.wait()
    with exclusive_run(paths, wait=True):
        order.append("second started")
    worker.join()
    assert order == ["first done", "second started"]


def test_each_run_works_in_a_folder_of_its_own_removed_when_it_ends(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    with exclusive_run(paths) as first:
        assert first.parent == paths.runs and first.is_dir()
        (first / "candidate").mkdir()
    with pytest.raises(RuntimeError), exclusive_run(paths) as second:  # a failed run too
        assert second != first
        raise RuntimeError("the run failed")
    assert list(paths.runs.iterdir()) == []


def test_a_killed_runs_folder_is_removed_and_only_its_checkpoints_taken_over(
    tmp_path: Path,
) -> None:
    """What a run killed outright left is never read in place: the next run moves its
    checkpoints into its own folder (they resume only where data and settings match)."""
    killed = (
        HOLDER + "with exclusive_run(paths) as folder:\n"
        "    (folder / 'checkpoints' / 'pretrain.ckpt').write_bytes(b'epoch 3')\n"
        "    (folder / 'candidate').mkdir()\n"
        "    os._exit(9)\n"
    )
    died = subprocess.run([sys.executable, "-c", killed, str(tmp_path)], check=False)
    assert died.returncode == 9
    paths = _paths(tmp_path)
    (left,) = paths.runs.iterdir()
    with exclusive_run(paths) as own:
        assert list(paths.runs.iterdir()) == [own]
        assert (own / "checkpoints" / "pretrain.ckpt").read_bytes() == b"epoch 3"
        assert not (own / "candidate").exists()
    assert not left.exists()
