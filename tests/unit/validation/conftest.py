"""A GX project with the suite built from the built-in data, and rows to check with it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from anomalyflow.data import synthetic
from anomalyflow.params import Params
from anomalyflow.pipeline.data import SYNTHETIC_SCHEMA
from anomalyflow.validation.suite import build_suite


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """The project's folder and holdout rows (a batch the suite accepts)."""
    root = tmp_path_factory.mktemp("gxproject")
    p = Params()
    data = synthetic.generate(
        replace(p.synthetic, history_rows=2000, recent_rows=3000, holdout_rows=2000)
    )
    build_suite(root, SYNTHETIC_SCHEMA, data.recent, p.validation)
    return root, data.holdout
