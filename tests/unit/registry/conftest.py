"""A registry whose versions are predictable, and a quick way to add versions to it."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from anomalyflow.registry.store import Registry
from tests.conftest import decision_record, make_blobs

SMOKE_ROWS = make_blobs(rows=8, seed=5)[0]


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """An empty registry whose versions share a prefix: BentoML names a version from
    ``uuid.uuid1()``, so here each new version differs from the last in one byte."""
    counter = itertools.count(1)
    monkeypatch.setattr(
        uuid, "uuid1", lambda: uuid.UUID(bytes=bytes([7, next(counter)] + [0] * 14))
    )
    return Registry(tmp_path / "bentoml")


@pytest.fixture
def add_version(registry: Registry, saved_detectors: list[Path]) -> Callable[..., str]:
    """Register a saved detector (the first by default) with a decision record."""

    def add(approved: bool = True, detector: int = 0) -> str:
        record = decision_record(approved)
        return registry.register(saved_detectors[detector], record, SMOKE_ROWS).version

    return add
