"""Per-epoch checkpoints that let an interrupted run resume where it stopped.

Checkpoints hold only tensors and plain numbers and are loaded with
``weights_only=True``, so opening one never executes code. A fingerprint of the data
and settings guards against resuming a run with different inputs, and a layout number
against resuming one saved in another shape by an older release.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anomalyflow.atomic import atomic_path

_LAYOUT = 2  # 2: one epoch loop for both stages, its state under "loop"


def fingerprint(*arrays: np.ndarray, settings: dict[str, Any]) -> str:
    """Hash of the training data and settings a checkpoint belongs to."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for array in arrays:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a crash while saving leaves the previous checkpoint intact."""
    with atomic_path(path) as partial:
        torch.save({**state, "layout": _LAYOUT}, partial)


def load_checkpoint(path: Path | None, expected_fingerprint: str) -> dict[str, Any] | None:
    """The saved state if it belongs to this run and layout, else ``None`` (start afresh)."""
    if path is None or not path.exists():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != expected_fingerprint or state.get("layout") != _LAYOUT:
        return None
    return state


def remove_checkpoint(path: Path | None) -> None:
    """Drop a finished run's checkpoint so a new run does not resume from it."""
    if path is not None:
        path.unlink(missing_ok=True)
