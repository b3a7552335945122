"""The README's "Use it from Python" code and the example script run as written."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Use it from Python"


def _readme_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return re.findall(r"```python\n(.*?)```", text[start : end if end > 0 else None], re.DOTALL)


def test_the_readme_python_section_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _readme_blocks()
    assert blocks, f"the README's '{SECTION}' section has no python block"
    monkeypatch.chdir(tmp_path)  # the example saves a model folder
    namespace: dict[str, object] = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert (tmp_path / "my-detector" / "detector.json").exists()


def test_the_example_script_runs_on_a_small_draw() -> None:
    spec = importlib.util.spec_from_file_location(
        "synthetic_transactions", REPO / "examples" / "synthetic_transactions.py"
    )
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    auprc = example.main(history_rows=1500, recent_rows=1000, epochs=1)
    assert 0.0 <= auprc <= 1.0
