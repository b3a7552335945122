"""Write a file whole or not at all: a temporary sibling, renamed over the target.

Readers (the next step, DVC, a person) see the old file or the new one, never half of
one, and a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write; it replaces ``path`` when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    try:
        yield Path(partial)
        os.chmod(partial, default_mode(0o666))  # mkstemp's file is private to its owner
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def default_mode(requested: int) -> int:
    """The mode a plain ``open`` or ``mkdir`` would give: ``requested`` less the umask.

    Temporary files and folders are created private (0600, 0700); outputs people share
    (scored files, review pages, models) get the usual mode once they are complete.
    """
    umask = os.umask(0)
    os.umask(umask)
    return requested & ~umask


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (a plot, an image)."""
    with atomic_path(path) as partial:
        partial.write_bytes(data)


def write_json(path: Path, payload: Any, **options: Any) -> None:
    """Replace ``path`` with ``payload`` as indented JSON; ``options`` go to ``json.dumps``."""
    write_text(path, json.dumps(payload, indent=2, **options) + "\n")
