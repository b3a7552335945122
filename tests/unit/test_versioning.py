"""DVC's refusals reach the user as DVC said them, on one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from anomalyflow.versioning import LedgerError, record_run


def test_a_damaged_dvc_lock_is_named_not_an_empty_reason(tmp_path: Path) -> None:
    """`dvc commit --quiet` said nothing: every run ended 'could not record the run: '."""
    subprocess.run(
        [sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True
    )
    (tmp_path / "dvc.yaml").write_text("stages:\n  hello:\n    cmd: echo hello\n")
    (tmp_path / "dvc.lock").write_text("{{{\n")

    with pytest.raises(LedgerError, match=r"dvc\.lock") as refused:
        record_run(tmp_path)
    assert "\n" not in str(refused.value)
