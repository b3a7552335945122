"""The code keeps the shape that makes the next change easy (tools/check_shape.py)."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def test_no_long_function_no_long_module_and_serving_apart_from_training() -> None:
    spec = importlib.util.spec_from_file_location("check_shape", REPO / "tools/check_shape.py")
    assert spec is not None and spec.loader is not None
    check_shape = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_shape)
    assert check_shape.breaches() == []
