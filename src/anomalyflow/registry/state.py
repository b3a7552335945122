"""Stages as a pure fold over the audit log, refusing any change the registry never makes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import ValidationError

from anomalyflow.registry.audit import AuditEntry, AuditLog, LoggedEntry, describe_errors
from anomalyflow.registry.errors import RegistryError

Stage = Literal["candidate", "production", "archived"]


class InvalidTransition(ValueError):
    """An entry the registry could not have written from the state before it."""


@dataclass(frozen=True)
class RegistryState:
    """The stages that the audit log's changes add up to."""

    revision: int = 0  # number of changes so far
    production: str | None = None
    # Earlier productions, latest last, never holding production: rollback pops from it.
    previous: tuple[str, ...] = ()
    archived: frozenset[str] = field(default_factory=frozenset)
    registered: frozenset[str] = field(default_factory=frozenset)
    gate_failed: frozenset[str] = field(default_factory=frozenset)  # the latest verdict
    # Versions whose verdict the log holds (register lines before verdicts had none).
    gate_judged: frozenset[str] = field(default_factory=frozenset)
    # (version, SHA-256 of its decision.json) as registered; legacy lines have none.
    # Evidence about the files, not a stage: left out of comparisons of states.
    records: frozenset[tuple[str, str]] = field(default_factory=frozenset, compare=False)

    def record_sha256(self, version: str) -> str | None:
        """The SHA-256 the register line recorded for ``version``'s decision.json."""
        return next((sha for v, sha in self.records if v == version), None)

    def gate_passed(self, version: str, as_labelled: bool) -> bool:
        """The gate's latest verdict on ``version``: the log's, else its label's."""
        return version not in self.gate_failed if version in self.gate_judged else as_labelled

    def stage_of(self, version: str) -> Stage:
        if version == self.production:
            return "production"
        return "archived" if version in self.archived else "candidate"

    def apply(self, entry: AuditEntry) -> RegistryState:
        """The state after one entry; :class:`InvalidTransition` if it cannot follow."""
        if entry.revision != self.revision + 1:
            raise InvalidTransition(
                f"revision {entry.revision} where {self.revision + 1} comes next"
            )
        if entry.action == "register":
            return self._registered(entry)
        if entry.version not in self.registered:
            raise InvalidTransition(f"{entry.action} of '{entry.version}', never registered")
        if entry.action == "promote":
            return self._promoted(entry)
        if entry.action == "rollback":
            return self._rolled_back(entry)
        if entry.action == "rejudge":  # the gate's rules changed: its verdict may too
            failed = {entry.version} if entry.gate == "failed" else set()
            kept = self.gate_failed - {entry.version}
            judged = self.gate_judged | {entry.version}
            return replace(
                self, revision=entry.revision, gate_failed=kept | failed, gate_judged=judged
            )
        return replace(self, revision=entry.revision)  # approve, reject: no stage change

    def _registered(self, entry: AuditEntry) -> RegistryState:
        if entry.version in self.registered:
            raise InvalidTransition(f"'{entry.version}' registered a second time")
        failed = {entry.version} if entry.gate == "failed" else set()
        recorded = {(entry.version, entry.record_sha256)} if entry.record_sha256 else set()
        return replace(
            self,
            revision=entry.revision,
            registered=self.registered | {entry.version},
            gate_failed=self.gate_failed | failed,
            gate_judged=self.gate_judged | ({entry.version} if entry.gate else set()),
            records=self.records | recorded,
        )

    def _promoted(self, entry: AuditEntry) -> RegistryState:
        version = entry.version
        if version == self.production:
            raise InvalidTransition(f"promotes '{version}', production already")
        if entry.previous_production != self.production:
            raise InvalidTransition(
                f"previous_production '{entry.previous_production}' "
                f"but production was '{self.production}'"
            )
        if version in self.gate_failed and not entry.forced:
            raise InvalidTransition(f"promotes '{version}', whose gate failed, unforced")
        previous = tuple(v for v in self.previous if v != version)
        archived = set(self.archived) - {version}
        if self.production is not None:
            previous += (self.production,)
            archived.add(self.production)
        return replace(
            self,
            revision=entry.revision,
            production=version,
            previous=previous,
            archived=frozenset(archived),
        )

    def _rolled_back(self, entry: AuditEntry) -> RegistryState:
        if self.production is None or not self.previous:
            raise InvalidTransition("a rollback with no earlier production to restore")
        if entry.version != self.previous[-1] or entry.previous_production != self.production:
            raise InvalidTransition(
                f"rolls back '{entry.previous_production}' to '{entry.version}', but the "
                f"production before '{self.production}' was '{self.previous[-1]}'"
            )
        if entry.version in self.gate_failed and not entry.forced:
            raise InvalidTransition(f"rolls back to '{entry.version}', whose gate failed, unforced")
        archived = (set(self.archived) | {self.production}) - {entry.version}
        return replace(
            self,
            revision=entry.revision,
            production=entry.version,
            previous=self.previous[:-1],
            archived=frozenset(archived),
        )


def fold(log: AuditLog, entries: tuple[LoggedEntry, ...]) -> RegistryState:
    """The state ``entries`` of ``log`` add up to; a refusal names the first bad line."""
    state = RegistryState()
    for logged in entries:
        try:
            state = state.apply(logged.entry)
        except InvalidTransition as invalid:
            raise log.tampered(logged.line, str(invalid)) from None
    return state


def next_state(current: RegistryState, line: str) -> RegistryState:
    """The state after ``line``, checked as a reader will check it, before it is written."""
    entry = json.loads(line)
    try:
        return current.apply(AuditEntry.model_validate_json(line))
    except ValidationError as invalid:
        rule = describe_errors(invalid)
    except InvalidTransition as invalid:
        rule = str(invalid)
    raise RegistryError(f"refused to record {entry['action']} of '{entry['version']}': {rule}")
