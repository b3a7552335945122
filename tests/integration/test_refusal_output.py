"""A refused batch reads as one clear message, and the user's own file is left alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tests.integration.test_main_job import SMALL


def test_a_rejected_batch_prints_no_traceback_and_keeps_the_users_file(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(SMALL)
    cli = [sys.executable, "-m", "anomalyflow"]
    subprocess.run([*cli, "generate"], cwd=tmp_path, check=True, capture_output=True)
    batch = pd.read_parquet(tmp_path / "data/recent.parquet")
    batch.loc[5, "amount"] = np.nan
    batch.to_csv(tmp_path / "bad.csv", index=False)
    original = (tmp_path / "bad.csv").read_bytes()

    done = subprocess.run(
        [*cli, "run", "--data", "bad.csv"], cwd=tmp_path, capture_output=True, text=True
    )

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "bad.csv").read_bytes() == original
    assert len(list((tmp_path / "data/quarantine").glob("bad-*/bad.csv"))) == 1
    assert not (tmp_path / "artifacts/candidate").exists()
