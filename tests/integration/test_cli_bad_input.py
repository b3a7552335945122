"""``anomalyflow fit-score`` on bad input: exit 2, a one-line reason, nothing written.

Every case fails while reading the inputs, before any training, so the arrays are tiny.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

PARAMS = "runtime:\n  progress: false\n  num_threads: 1\n"
SMALL_BATCH = PARAMS + "pretrain:\n  batch_size: 64\n"


def good_x(rows: int = 8, columns: int = 4) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(rows, columns))


def good_y(rows: int = 8) -> np.ndarray:
    return np.arange(rows) % 2


@dataclass(frozen=True)
class Case:
    train: dict[str, np.ndarray] | None  # None: a 0-byte train.npz
    test: dict[str, np.ndarray] = field(default_factory=lambda: {"X": good_x()})
    params: str = PARAMS
    file: str = "train.npz"
    names: tuple[str, ...] = ()


def nan_x() -> np.ndarray:
    x = good_x()
    x[3, 2] = np.nan
    return x


CASES = {
    "nan-in-x": Case(train={"X": nan_x(), "y": good_y()}, names=("'X[:, 2]'", "NaN")),
    "label-2": Case(
        train={"X": good_x(), "y": np.array([0, 1, 2, 0, 0, 0, 0, 0])},
        names=("'y'", "0 or 1"),
    ),
    "test-feature-count": Case(
        train={"X": good_x(), "y": good_y()},
        test={"X": good_x(columns=3)},
        file="test.npz",
        names=("'X'", "3 features", "TRAIN has 4"),
    ),
    "empty-file": Case(train=None, names=("empty",)),
    "fewer-rows-than-batch": Case(
        train={"X": good_x(rows=10), "y": good_y(rows=10)},
        params=SMALL_BATCH,
        names=("10 rows", "batch size 64"),
    ),
}


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=name) for name, case in CASES.items()],
)
def test_fit_score_refuses_bad_input_without_writing(tmp_path: Path, case: Case) -> None:
    if case.train is None:
        (tmp_path / "train.npz").write_bytes(b"")
    else:
        np.savez(tmp_path / "train.npz", **case.train)  # type: ignore[arg-type]
    np.savez(tmp_path / "test.npz", **case.test)  # type: ignore[arg-type]
    (tmp_path / "params.yaml").write_text(case.params)
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    result = subprocess.run(
        [sys.executable, "-m", "anomalyflow", "fit-score", "--train", "train.npz",
         "--test", "test.npz", "--out", "out/scores.npy", "--params", "params.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert result.returncode == 2, result.stderr
    assert case.file in result.stderr
    for name in case.names:
        assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert not (out_dir / "scores.npy").exists()
    assert list(out_dir.iterdir()) == []  # no partial or temp files
