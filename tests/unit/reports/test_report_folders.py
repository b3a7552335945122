"""Each review page gets a folder of its own: a later page never overwrites an earlier one."""

from __future__ import annotations

from pathlib import Path

from anomalyflow.pipeline.review import _new_folder


def test_pages_built_within_one_second_get_separate_folders(tmp_path: Path) -> None:
    folders = [_new_folder(tmp_path / "reports") for _ in range(3)]

    assert len(set(folders)) == 3 and all(f.is_dir() for f in folders)
    assert all(f.name.startswith(folders[0].name[:8]) for f in folders)  # named by UTC time
