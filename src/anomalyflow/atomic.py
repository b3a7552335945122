"""Write a file whole or not at all: a temporary sibling, renamed over the target.

Readers (the next step, DVC, a person) see the old file or the new one, never half of
one, and a failure leaves nothing behind. A writer killed outright (``kill -9``, a power
cut) cannot clean up: its temporary file is named after its process id, so
:func:`sweep_partials` can tell it from one a live writer is still filling.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SUFFIX = ".partial"
# A temporary file named before the process id was part of the name cannot say whose it
# is: it is taken for abandoned once nothing has written to it for this long.
UNNAMED_STALE_S = 3600.0


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write; it replaces ``path`` when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.pid{os.getpid()}.", suffix=SUFFIX
    )
    os.close(handle)
    try:
        yield Path(partial)
        os.chmod(partial, default_mode(0o666))  # mkstemp's file is private to its owner
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """A temporary folder to fill; it replaces the folder ``path`` when the block ends
    without error (see :func:`publish_folder`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(SUFFIX, f".{path.name}.pid{os.getpid()}.", path.parent))
    try:
        yield staging
        publish_folder(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish_folder(staging: Path, target: Path) -> None:
    """Rename a filled temporary folder into place; an earlier ``target`` is moved aside,
    then deleted, so a reader sees the old folder or the new one, never a mix."""
    os.chmod(staging, default_mode(0o777))  # mkdtemp's folder is private to its owner
    for part in staging.iterdir():
        if part.is_file():
            os.chmod(part, default_mode(0o666))
    if not target.exists():
        os.replace(staging, target)
        return
    aside = Path(tempfile.mkdtemp(SUFFIX, f".{target.name}.pid{os.getpid()}.old.", target.parent))
    os.rmdir(aside)  # only its unique name is needed: a folder renames onto no folder
    os.replace(target, aside)
    os.replace(staging, target)
    shutil.rmtree(aside, ignore_errors=True)


def sweep_partials(folder: Path) -> list[Path]:
    """Delete the temporary files and folders of writers that died mid-write, anywhere
    under ``folder``.

    A file whose writer still runs is kept (another command may be writing there); one
    named before names carried the process id is deleted once it is an hour old. Returns
    what was deleted. A reused process id only delays a file's deletion, never hastens it.
    """
    swept = []
    now = time.time()
    for partial in list(folder.rglob(f".*{SUFFIX}")) if folder.is_dir() else []:
        writer = _writer_pid(partial.name)
        try:
            abandoned = (
                not _running(writer)
                if writer is not None
                else now - partial.stat().st_mtime > UNNAMED_STALE_S
            )
            if abandoned and partial.is_dir():
                shutil.rmtree(partial)
                swept.append(partial)
            elif abandoned and partial.is_file():
                partial.unlink()
                swept.append(partial)
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            continue
    return swept


def _writer_pid(name: str) -> int | None:
    """The process id in ``.<target>.pid<PID>.<random>.partial``, or None (older names)."""
    parts = name.removesuffix(SUFFIX).rsplit(".", 2)
    if len(parts) == 3 and parts[1].startswith("pid") and parts[1][3:].isdigit():
        return int(parts[1][3:])
    return None


def _running(pid: int) -> bool:
    """A process ``pid`` exists (it may belong to another user), and is no zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has ended; only its exit status waits to be read
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS), or it ended just now
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


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
