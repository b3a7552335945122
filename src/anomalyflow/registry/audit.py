"""The registry's audit log: one JSON line per change, each chained to the lines before it.

Every line written carries ``prev_sha256``, the SHA-256 of all the log's bytes before
it. Reading checks every line's shape (:class:`AuditEntry`) and the chain, so a line
appended, inserted, removed or edited by hand is refused with its line number instead
of silently changing which model is production. Logs written before the chain existed
have no ``prev_sha256``: such lines are read as long as no chained line precedes them;
the first chained line then vouches for all of them.

The chain makes edits evident, not impossible: someone who recomputes the hashes can
still rewrite the log, and removing lines from the end is not detected.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from anomalyflow.registry.errors import AuditLogTampered

Action = Literal["register", "promote", "rollback", "approve", "reject", "rejudge"]
SHA256 = r"^[0-9a-f]{64}$"


class AuditEntry(BaseModel):
    """One committed change, as one line of ``audit.jsonl``; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # no "4" for 4

    at: datetime
    actor: str = Field(min_length=1)
    action: Action
    version: str = Field(min_length=1)  # always a full version, never a prefix or a name
    revision: int = Field(ge=1)  # this change's position: line n holds revision n
    previous_production: str | None = None  # promote, rollback: production before it
    forced: bool = False  # promote, rollback: past the gate (or feature guard) on purpose
    reason: str | None = None
    smoke_test: dict[str, Any] | None = None  # promote: the serving smoke test's outcome
    gate: Literal["passed", "failed"] | None = None  # register, rejudge: the gate's verdict
    prev_sha256: str | None = Field(default=None, pattern=SHA256)  # None: a legacy line
    # register: SHA-256 of the version's decision.json, which holds its files' hashes, so
    # the log vouches for the files under the version's name (None: a legacy line)
    record_sha256: str | None = Field(default=None, pattern=SHA256)

    @model_validator(mode="after")
    def _fits_its_action(self) -> AuditEntry:
        if self.action == "promote" and not (self.smoke_test or {}).get("passed"):
            raise ValueError("a promotion without a passed smoke_test")
        if self.forced and not (self.reason and self.reason.strip()):
            raise ValueError("a forced promotion without a reason")
        if self.action == "rollback" and self.previous_production is None:
            raise ValueError("a rollback without previous_production")
        if self.action not in ("register", "rejudge") and self.gate is not None:
            raise ValueError("gate belongs to register and rejudge lines only")
        if self.action != "register" and self.record_sha256 is not None:
            raise ValueError("record_sha256 belongs to register lines only")
        if self.action == "rejudge" and self.gate is None:
            raise ValueError("a rejudge without the gate's verdict")
        return self


@dataclass(frozen=True)
class LoggedEntry:
    """An entry with its line number (from 1) and the JSON as written."""

    line: int
    raw: dict[str, Any]
    entry: AuditEntry


@dataclass(frozen=True)
class VerifiedLog:
    """The committed lines of a log that passed every check, and the hash to chain to."""

    entries: tuple[LoggedEntry, ...]
    head_sha256: str  # SHA-256 of every committed byte: the next line's prev_sha256


class AuditLog:
    """The append-only file behind the registry's stages."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def tampered(self, line: int, rule: str) -> AuditLogTampered:
        """The refusal for ``line``: one line naming the file, the line and the rule."""
        return AuditLogTampered(
            f"audit log {self.path}, line {line}: {rule}; "
            "nothing was read or changed (the registry refuses a log it cannot verify)"
        )

    def read(self) -> VerifiedLog:
        """Every committed line, checked (a torn last line was never committed)."""
        data = self.path.read_bytes() if self.path.exists() else b""
        committed = data[: data.rfind(b"\n") + 1]
        digest = hashlib.sha256()
        chained = False
        entries = []
        for number, line in enumerate(committed.split(b"\n")[:-1], start=1):
            raw, entry = self._parse(number, line)
            if entry.prev_sha256 is None and chained:
                raise self.tampered(number, "no prev_sha256 after chained lines")
            if entry.prev_sha256 is not None and entry.prev_sha256 != digest.hexdigest():
                raise self.tampered(
                    number,
                    "prev_sha256 differs from the lines before it (one was changed, "
                    "inserted or removed)",
                )
            chained = chained or entry.prev_sha256 is not None
            digest.update(line + b"\n")
            entries.append(LoggedEntry(number, raw, entry))
        return VerifiedLog(tuple(entries), digest.hexdigest())

    def _parse(self, number: int, line: bytes) -> tuple[dict[str, Any], AuditEntry]:
        try:
            raw = json.loads(line, object_pairs_hook=_unique_keys)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self.tampered(number, f"not JSON ({_excerpt(line)})") from None
        except _DuplicateKey as duplicate:
            raise self.tampered(number, f"the key '{duplicate}' twice") from None
        if not isinstance(raw, dict):
            raise self.tampered(number, f"not a JSON object ({_excerpt(line)})")
        try:
            return raw, AuditEntry.model_validate_json(line)
        except ValidationError as invalid:
            raise self.tampered(number, describe_errors(invalid)) from None

    def append(self, line: str) -> None:
        """The commit point: the change has happened once its line is on disk."""
        with self.path.open("a") as log:
            log.write(line)
            log.flush()
            os.fsync(log.fileno())

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive access for one change, across threads and processes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / "registry.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def drop_torn_line(self) -> None:
        """Cut a line a crash left half-written, so the next change starts cleanly."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as log:
                log.truncate(data.rfind(b"\n") + 1)

    def signature(self) -> tuple[int, int] | None:
        """Modification time and size: a cheap look for whether anything was written."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size


class _DuplicateKey(ValueError):
    """JSON keeps the last of two equal keys silently; the registry never writes two."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def _excerpt(line: bytes, limit: int = 40) -> str:
    text = line.decode(errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."


def describe_errors(invalid: ValidationError, shown: int = 3) -> str:
    """Pydantic's first errors on one line: where, and what is wrong."""
    errors = invalid.errors()
    described = [
        f"{'.'.join(str(part) for part in error['loc']) or 'entry'}: {error['msg']}"
        for error in errors[:shown]
    ]
    more = f" (+{len(errors) - shown} more)" if len(errors) > shown else ""
    return "; ".join(described) + more
