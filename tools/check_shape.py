"""The code's shape, checked: short functions, short modules, serving apart from training.

Run ``python tools/check_shape.py`` (the tests run it too). It prints each breach and
exits 1 when there is one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = (ROOT / "src", ROOT / "flows")
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
SERVING = ROOT / "src" / "anomalyflow" / "serving"
FORBIDDEN_IN_SERVING = "anomalyflow.training"


def breaches() -> list[str]:
    """Every place the code breaks one of the shape rules, as ``path:line: rule``."""
    found: list[str] = []
    for path in sorted(p for folder in CHECKED for p in folder.rglob("*.py")):
        source = path.read_text()
        tree = ast.parse(source)
        where = path.relative_to(ROOT)
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{where}: module of {lines} lines (> {MAX_MODULE_LINES})")
        found += _long_functions(tree, where)
        if path.is_relative_to(SERVING):
            found += _training_imports(tree, where)
    return found


def _long_functions(tree: ast.Module, where: Path) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(
                    f"{where}:{node.lineno}: {node.name}() has {length} lines "
                    f"(> {MAX_FUNCTION_LINES})"
                )
    return found


def _training_imports(tree: ast.Module, where: Path) -> list[str]:
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if name == FORBIDDEN_IN_SERVING or name.startswith(FORBIDDEN_IN_SERVING + "."):
                found.append(f"{where}:{node.lineno}: serving imports {name}")
    return found


def main() -> int:
    found = breaches()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
