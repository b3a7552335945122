"""Saved model files are checked against the hashes recorded when they were written.

A flipped byte or a truncated file in ``weights.safetensors`` otherwise loads and scores
silently (NaN, or different scores); here it is a refusal naming the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from anomalyflow.errors import Refusal


class IntegrityError(Refusal):
    """A saved file is missing, or differs from what was recorded when it was written."""


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object this project wrote (a record, a model description), or a refusal
    naming the file: one changed or damaged since is never half read."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeError are ValueErrors
        raise IntegrityError(f"{path}: cannot be read as JSON ({error})") from None
    if not isinstance(value, dict):
        raise IntegrityError(f"{path}: must be a JSON object")
    return value


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
