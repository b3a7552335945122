"""Files are replaced whole or not at all."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anomalyflow.atomic import (
    UNNAMED_STALE_S,
    atomic_folder,
    atomic_path,
    sweep_partials,
    write_json,
)


def test_json_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "metrics.json"
    write_json(target, {"auprc": 0.5})
    write_json(target, {"auprc": 0.6})
    assert json.loads(target.read_text()) == {"auprc": 0.6}
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError), atomic_path(target) as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_values_json_cannot_hold_are_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError):
        write_json(tmp_path / "r.json", {"auprc": float("nan")}, allow_nan=False)
    assert not list(tmp_path.iterdir())


def test_outputs_get_the_usual_mode_not_a_temporary_files_private_one(tmp_path: Path) -> None:
    """Scored files and review pages were once created 0600, unreadable to the team."""
    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "report.json", {"a": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o644


def test_a_sweep_removes_what_a_killed_writer_left_and_keeps_a_live_writers_file(
    tmp_path: Path,
) -> None:
    """``kill -9`` mid-write once left ``.pretrain.ckpt.*.partial`` for good."""
    folder = tmp_path / "checkpoints"
    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal, sys\n"
         "from pathlib import Path\n"
         "from anomalyflow.atomic import atomic_path\n"
         "with atomic_path(Path(sys.argv[1])) as partial:\n"
         "    partial.write_bytes(b'half a checkpoint')\n"
         "    os.kill(os.getpid(), signal.SIGKILL)\n",
         str(folder / "pretrain.ckpt")],
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    (left,) = folder.iterdir()
    with atomic_path(folder / "finetune.ckpt") as writing:  # this process: alive
        writing.write_bytes(b"in progress")
        assert sweep_partials(tmp_path) == [left]
        assert [p.name for p in folder.iterdir()] == [writing.name]
    assert [p.name for p in folder.iterdir()] == ["finetune.ckpt"]


def test_a_partial_named_without_its_writer_is_swept_only_once_it_is_old(
    tmp_path: Path,
) -> None:
    """Files left by releases that did not name the writer: only old ones are abandoned."""
    old, recent = tmp_path / ".a.ckpt.k3j9x1.partial", tmp_path / ".b.ckpt.p0q8z2.partial"
    old.write_bytes(b"")
    recent.write_bytes(b"")
    long_ago = time.time() - UNNAMED_STALE_S - 60
    os.utime(old, (long_ago, long_ago))
    assert sweep_partials(tmp_path) == [old]
    assert list(tmp_path.iterdir()) == [recent]


def test_a_folder_is_replaced_whole_and_a_killed_writers_staging_is_swept(
    tmp_path: Path,
) -> None:
    target = tmp_path / "candidate"
    with atomic_folder(target) as staging:
        (staging / "weights").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_folder(target) as staging:
        (staging / "weights").write_bytes(b"half")
        raise RuntimeError("disk full")
    assert [p.name for p in tmp_path.iterdir()] == ["candidate"]
    assert (target / "weights").read_bytes() == b"old"
    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal, sys\n"
         "from pathlib import Path\n"
         "from anomalyflow.atomic import atomic_folder\n"
         "with atomic_folder(Path(sys.argv[1])) as staging:\n"
         "    (staging / 'weights').write_bytes(b'new')\n"
         "    os.kill(os.getpid(), signal.SIGKILL)\n",
         str(target)],
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    (left,) = (p for p in tmp_path.iterdir() if p != target)
    assert sweep_partials(tmp_path) == [left]
    assert [p.name for p in tmp_path.iterdir()] == ["candidate"]
    assert (target / "weights").read_bytes() == b"old"
