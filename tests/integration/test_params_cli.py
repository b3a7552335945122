"""``anomalyflow run`` refuses a params file that is missing, out of range or not YAML.

The params are read before the job touches anything, so a refusal is exit code 2 and one
line on stderr, with no data, artifacts or model store left behind in the working folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = Path(sys.executable).with_name("anomalyflow")  # the installed console script

# params file name -> its text; None: the file is not there.
CASES = {
    "missing-file": ("does_not_exist.yaml", None),
    "out-of-range": ("params.yaml", "finetune:\n  learning_rate: -0.1\n"),
    "yaml-syntax": ("params.yaml", "finetune:\n  learning_rate: 0.1\n patience: 3\n"),
}


@pytest.mark.parametrize(("name", "text"), CASES.values(), ids=CASES.keys())
def test_run_refuses_bad_params_in_one_line_and_creates_nothing(
    tmp_path: Path, name: str, text: str | None
) -> None:
    if text is not None:
        (tmp_path / name).write_text(text)
    env = {**os.environ, "DO_NOT_TRACK": "1", "BENTOML_DO_NOT_TRACK": "true"}

    result = subprocess.run(
        [str(CLI), "run", "--params", name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], result.stderr
    for folder in ("artifacts", "data", ".bentoml"):
        assert not (tmp_path / folder).exists(), f"{folder}/ was created"


def test_debug_shows_the_traceback_of_a_refusal(tmp_path: Path) -> None:
    """One line is for users; ``--debug`` is for whoever reports a bug."""
    command = [str(CLI), "--debug", "run", "--params", "does_not_exist.yaml"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "does_not_exist.yaml" in done.stderr
