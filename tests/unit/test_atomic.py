"""Files are replaced whole or not at all."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from anomalyflow.atomic import atomic_path, write_json


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
