"""A full disk under the model store: the run fails with ENOSPC mid-registration (issue 14).

The project's BentoML home is put on a tmpfs with less room left than one more version
needs, so registering the run's candidate runs out of space part-way through its files.
Skipped where the machine does not let us mount one (not root, no CAP_SYS_ADMIN).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.test_faults import MODELS, base, cli, leftovers, production, project
from tests.faults.test_kills import RETRAIN, assert_intact

__all__ = ["base", "project"]  # fixtures, used by name


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def full_store(project: Path) -> Iterator[Path]:
    """The project with its ``.bentoml`` on a tmpfs holding half a version more."""
    home = project / ".bentoml"
    one_version = max(size_of(p) for p in (project / MODELS).iterdir() if p.is_dir())
    kept = project.parent / "bentoml-kept"
    shutil.move(home, kept)
    home.mkdir()
    room = size_of(kept) + one_version // 2 + 64 * 1024  # files round up to 4 KiB pages
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={room // 1024}k", "tmpfs", str(home)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        home.rmdir()
        shutil.move(kept, home)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        shutil.copytree(kept, home, dirs_exist_ok=True, symlinks=True)
        yield project
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


@pytest.mark.slow
def test_a_run_that_fills_the_disk_fails_clearly_and_changes_nothing(
    base: tuple[Path, str, str], full_store: Path
) -> None:
    _, prod, _ = base
    project = full_store
    (project / "params.yaml").write_text(RETRAIN)  # a new candidate to register

    result = cli(project, "run", timeout=600)

    assert result.returncode != 0, result.stdout
    assert "No space left on device" in result.stdout + result.stderr
    assert assert_intact(project, {prod}) == prod
    assert leftovers(project) == []
    assert production(project) == prod
