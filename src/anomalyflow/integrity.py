"""Saved model files are checked against the hashes recorded when they were written.

A flipped byte or a truncated file in ``weights.safetensors`` otherwise loads and scores
silently (NaN, or different scores); here it is a refusal naming the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from anomalyflow.errors import Refusal


class IntegrityError(Refusal):
    """A saved file is missing, or differs from what was recorded when it was written."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_checksums(folder: Path, names: tuple[str, ...]) -> dict[str, str]:
    """The hashes to record beside ``names`` in ``folder``, as they are now."""
    return {name: file_sha256(folder / name) for name in names}


def verify_checksums(folder: Path, recorded: object, names: tuple[str, ...]) -> None:
    """Refuse unless every file of ``names`` has a recorded hash and still matches it.

    Raises:
        IntegrityError: naming the file and what differs.
    """
    if not isinstance(recorded, dict):
        raise IntegrityError(
            f"{folder / 'detector.json'}: no 'checksums' recorded, so the model files "
            "cannot be verified; retrain or re-save the model"
        )
    for name in names:
        path = folder / name
        if not path.is_file():
            raise IntegrityError(f"{path}: file missing")
        if recorded.get(name) != file_sha256(path):
            raise IntegrityError(
                f"{path}: SHA-256 differs from the one recorded when it was saved "
                "(the file is corrupted or was changed); refusing to load it"
            )
