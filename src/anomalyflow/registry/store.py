"""Model versions and their stages over the BentoML model store.

Every version the pipeline registers is a BentoML model ``<model name>:<version>``
holding the detector files (weights, scaler, threshold), the decision record and a
smoke batch; its labels carry the stage and the gate outcome, its metadata the
threshold, registered metrics and lineage, so ``bentoml models list`` shows them too.

Which version is production follows from one append-only audit log per model name
(:mod:`anomalyflow.registry.audit`): each change is one line appended under an
exclusive lock, after checking that nobody else changed the registry since the caller
looked. A change has happened exactly when its line is in the log, so a crash
mid-promotion leaves the previous state, two promotions at once cannot both win, and
there is never more than one production version. The log is verified line by line
(shape, hash chain, and a fold that accepts only changes the registry could have made)
before anything is read from it or written to it. Stage labels are copied from the log
after every change.

A version, likewise, exists exactly when its register line does: its folder enters the
store under the lock, marked as being registered, just before the line is appended. A
marked folder without its line (a writer killed in between) is never listed or resolved,
and the next opening of the registry removes it, with the staged copies of writers no
longer running. A complete folder without its line means the log lost lines: the
registry refuses to read a log the store contradicts, and removes nothing.

Every method taking a version accepts a unique prefix of one or the names
``production``, ``previous`` and ``latest`` (:meth:`Registry.resolve`) and works on,
returns and records the full version.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anomalyflow.integrity import file_sha256
from anomalyflow.params import RegistryParams, RuntimeParams
from anomalyflow.registry.audit import AuditLog, LoggedEntry
from anomalyflow.registry.bento_store import ModelFolders
from anomalyflow.registry.errors import AuditLogTampered, RegistryConflict, RegistryError
from anomalyflow.registry.model_version import (
    ModelVersion,
    bentoml_metadata,
    describe,
    failed_rules,
    features_differ,
    refuse_force_without_reason,
)
from anomalyflow.registry.naming import (
    LEGACY_MODEL_NAME,
    audit_log_path,
    model_name,
    the_version_starting,
)
from anomalyflow.registry.state import RegistryState, Stage, fold, next_state
from anomalyflow.registry.verify import verified_detector, verified_graph, with_weights_md5

if TYPE_CHECKING:  # torch loads only where a model does: listing stays quick
    from anomalyflow.detector import AnomalyDetector

__all__ = [
    "LEGACY_MODEL_NAME",
    "AuditLogTampered",
    "ModelVersion",
    "Registry",
    "RegistryConflict",
    "RegistryError",
    "RegistryState",
    "Stage",
    "bentoml_home",
    "open_registry",
]


class Registry:
    """One model name's registry under a BentoML home: ``models/<name>/`` and its audit log.

    Each model name has its own versions, production, history and lock: nothing one
    name does changes another's.
    """

    def __init__(self, home: Path, name: str = LEGACY_MODEL_NAME) -> None:
        self.home = Path(home)
        self.name = name
        self.models = ModelFolders(self.home, name)
        self.log = AuditLog(audit_log_path(self.home, name))

    def recover(self) -> None:
        """Remove what writers killed mid-registration left; best effort (a reader that
        cannot write to the store leaves it, and still never sees it)."""
        if self.models.root.is_dir() or self.models.staging.is_dir():  # else: none left
            with suppress(OSError), self._writing():
                pass

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """The registry's lock for one change, once dead writers' leftovers are gone."""
        with self.log.locked():
            registered: frozenset[str] | None = None  # unknown: no folder is removed
            with suppress(AuditLogTampered):  # the reading that follows refuses it
                registered = self.state().registered
            self.models.sweep(registered)
            yield

    @property
    def audit_log(self) -> Path:
        return self.log.path

    # reading ------------------------------------------------------------------------

    def state(self) -> RegistryState:
        """The current stages, from the verified audit log (:class:`AuditLogTampered`)."""
        return self._verified(self.log.read().entries)

    def history(self) -> list[dict[str, Any]]:
        """Every committed change as written, oldest first, once the log is verified."""
        entries = self.log.read().entries
        self._verified(entries)
        return [logged.raw for logged in entries]

    def _verified(self, entries: tuple[LoggedEntry, ...]) -> RegistryState:
        """The state ``entries`` fold to, once the store holds no version they lack."""
        state = fold(self.log, entries)
        if (self.home / "anomalyflow").exists():  # not a built Bento's home: logs are ours
            self.models.refuse_unlisted(state.registered, self.audit_log)
        return state

    def versions(self) -> list[ModelVersion]:
        """Every registered version, newest first."""
        state = self.state()
        found = [describe(self.models.get(v), state) for v in self._stored(state)]
        return sorted(found, key=lambda v: v.created, reverse=True)

    def missing(self) -> list[str]:
        """Registered versions whose folder is gone from the store (deleted by hand)."""
        return sorted(set(self.state().registered) - set(self.models.versions()))

    def _stored(self, state: RegistryState) -> list[str]:
        """The stored versions that are versions: those the log registers."""
        return [v for v in self.models.versions() if v in state.registered]

    def resolve(self, ref: str) -> str:
        """The full version ``ref`` names.

        ``ref`` is a full version, a prefix that starts exactly one registered version,
        or one of ``production``, ``previous`` (the production a rollback would
        restore) and ``latest`` (the newest registered). Nothing found, or a prefix of
        several versions (listed), is a :class:`RegistryError`.
        """
        if ref in ("production", "previous"):
            return self._named(ref)
        state = self.state()
        known = self._stored(state)
        if ref == "latest":
            if not known:
                raise RegistryError(f"no registered versions of {self.name} in {self.home}")
            return max(known, key=lambda v: self.models.get(v).info.creation_time)
        return the_version_starting(ref, known, self.name, set(state.registered) - set(known))

    def get(self, ref: str) -> ModelVersion:
        """One version (``ref`` as :meth:`resolve` takes it)."""
        return describe(self.models.get(self.resolve(ref)), self.state())

    def production(self) -> ModelVersion | None:
        """The production version, if one was ever promoted."""
        state = self.state()
        if state.production is None:
            return None
        return describe(self.models.get(state.production), state)

    def load(self, ref: str | None = None, runtime: RuntimeParams | None = None) -> AnomalyDetector:
        """The verified detector of ``ref`` (production by default); ``runtime`` overrides
        its saved device settings.

        Raises:
            IntegrityError: its files no longer match what was recorded (names it).
        """
        chosen = self.get(ref) if ref else self.production()
        if chosen is None:
            raise RegistryError("no production model yet: promote a version first")
        recorded = self.state().record_sha256(chosen.version)
        return verified_detector(chosen.path, chosen.version, runtime, recorded)

    def _named(self, name: str) -> str:
        state = self.state()
        if name == "production":
            if state.production is None:
                raise RegistryError(f"no production model of {self.name} in {self.home} yet")
            return state.production
        if not state.previous:
            raise RegistryError(f"no previous production of {self.name}: nothing preceded it")
        return state.previous[-1]

    # changing -----------------------------------------------------------------------

    def register(
        self,
        candidate_dir: Path,
        decision: dict[str, Any],
        smoke_batch: np.ndarray,
    ) -> ModelVersion:
        """Save a fine-tuned candidate with its decision record; it starts as a candidate.

        Args:
            candidate_dir: a saved :class:`AnomalyDetector` folder.
            decision: the gate's decision record (rules, metrics, lineage, run id).
            smoke_batch: raw feature rows ``(rows, features)`` the serving smoke test
                scores through HTTP and in process.
        """
        self.state()  # a log that fails verification is refused before anything is stored
        from anomalyflow.detector import AnomalyDetector

        AnomalyDetector.load(candidate_dir)  # its own checksums, before anything is stored
        decision = with_weights_md5(decision, candidate_dir)
        metadata = bentoml_metadata(candidate_dir, decision)
        gate = "passed" if decision["approved"] else "failed"

        def fill(target: Path) -> None:
            shutil.copytree(candidate_dir, target / "detector")
            with_weights_md5(decision, target / "detector")  # the copy is what was checked
            (target / "decision.json").write_text(json.dumps(decision, indent=2, default=str))
            np.save(target / "smoke.npy", np.asarray(smoke_batch, dtype=np.float32))

        version, staged = self.models.stage({"stage": "candidate", "gate": gate}, metadata, fill)
        registered = {"action": "register", "version": version, "gate": gate}
        registered["record_sha256"] = file_sha256(staged / "decision.json")
        try:
            with self._writing():
                try:
                    self.models.publish(version, staged)
                    self._commit_locked(registered)
                    self.models.registered(version)
                except BaseException:  # not registered: not a version, so not in the store
                    self.models.discard(version)
                    raise
        finally:
            shutil.rmtree(staged, ignore_errors=True)  # gone already once published
        return self.get(version)

    def promote(
        self,
        ref: str,
        smoke_test: Callable[[ModelVersion], dict[str, Any]],
        *,
        force: bool = False,
        reason: str | None = None,
        actor: str | None = None,
    ) -> RegistryState:
        """Make ``ref``'s version production and archive the previous one.

        A version whose gate failed is refused unless ``force`` with a ``reason``, both
        recorded; so is one whose files fail verification (:class:`IntegrityError`, even
        with ``force``). ``smoke_test`` must pass first: it runs outside the lock (it
        starts a server), so the commit then checks nobody changed the registry meanwhile.
        """
        version = self.resolve(ref)
        seen = self.state()
        chosen = describe(self.models.get(version), seen)
        # What it records is read only once verified.
        verified_detector(chosen.path, version, record_sha256=seen.record_sha256(version))
        if seen.production == version:
            raise RegistryError(f"'{version}' is production already")
        refuse_force_without_reason(force, reason)
        if not chosen.gate_passed and not force:
            # A verdict given again (rejudge) is in the history, not in its decision.json.
            failed = ", ".join(failed_rules(chosen)) or f"`anomalyflow history {version}` says why"
            raise RegistryError(
                f"'{version}' failed the gate ({failed}); "
                'promote it anyway with --force --reason "..."'
            )
        production = describe(self.models.get(seen.production), seen) if seen.production else None
        other_features = features_differ(chosen, production) if production else None
        if other_features and not force:
            raise RegistryError(f"{other_features}; promote it anyway with --force --reason")
        smoke = smoke_test(chosen)
        return self._commit(
            {
                "action": "promote",
                "version": version,
                "previous_production": seen.production,
                "forced": force and (not chosen.gate_passed or bool(other_features)),
                "reason": reason,
                "smoke_test": smoke,
                "actor": actor,
            },
            expected_revision=seen.revision,
        )

    def rollback(
        self, reason: str | None = None, actor: str | None = None, *, force: bool = False
    ) -> RegistryState:
        """Restore the production that preceded the current one.

        Each rollback steps one further back through the earlier productions: the one
        rolled back from is not a target again until it is promoted again. A target whose
        gate failed (it was production only by a forced promotion) is refused unless
        ``force`` with a ``reason``, both recorded; one whose files fail verification is
        refused (:class:`IntegrityError` naming it).
        """
        seen = self.state()
        if seen.production is None or not seen.previous:
            raise RegistryError(
                "nothing to roll back to: no earlier production precedes "
                f"{seen.production or 'the (absent) production'}"
            )
        target = seen.previous[-1]
        refuse_force_without_reason(force, reason)
        if target in seen.gate_failed and not force:
            raise RegistryError(
                f"the production before '{seen.production}' is '{target}', whose gate "
                'failed; roll back to it anyway with --force --reason "..."'
            )
        folder = Path(self.models.get(target).path)
        detector = verified_detector(folder, target, record_sha256=seen.record_sha256(target))
        verified_graph(folder, target, detector)  # what serve loads
        return self._commit(
            {
                "action": "rollback",
                "version": target,
                "previous_production": seen.production,
                "forced": force and target in seen.gate_failed,
                "reason": reason,
                "actor": actor,
            },
            expected_revision=seen.revision,
        )

    def record_review(
        self, ref: str, approved: bool, reason: str | None, actor: str | None, by_gate: bool = False
    ) -> str:
        """Record a person's approval or rejection of a candidate, or (``by_gate``) the
        gate's new verdict once its rules changed; the full version."""
        version = self.resolve(ref)
        change: dict[str, Any] = {"action": "approve" if approved else "reject"}
        if by_gate:
            change = {"action": "rejudge", "gate": "passed" if approved else "failed"}
        change |= {"version": version, "reason": reason, "actor": actor}
        self._commit(change, expected_revision=None)
        return version

    def _commit(self, change: dict[str, Any], expected_revision: int | None) -> RegistryState:
        """Append one change under the lock; ``expected_revision`` guards promotions."""
        with self._writing():
            return self._commit_locked(change, expected_revision)

    def _commit_locked(
        self, change: dict[str, Any], expected_revision: int | None = None
    ) -> RegistryState:
        """:meth:`_commit` for a caller holding the lock."""
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "actor": change.pop("actor", None) or getpass.getuser(),
        } | change
        self.log.drop_torn_line()
        log = self.log.read()
        current = self._verified(log.entries)
        if expected_revision is not None and current.revision != expected_revision:
            raise RegistryConflict(
                f"the registry changed while '{entry['version']}' was being promoted "
                f"(production is now {current.production}); nothing was changed"
            )
        entry |= {"revision": current.revision + 1, "prev_sha256": log.head_sha256}
        line = json.dumps(entry, default=str)
        state = next_state(current, line)
        stored = self.models.all()  # a model.yaml that cannot be read refuses the change now
        self._append(line + "\n")
        self.models.label_stages(state.stage_of, stored)  # BentoML's labels follow the log
        return state

    def _append(self, line: str) -> None:
        """The commit point: the change has happened once its line is on disk."""
        self.log.append(line)


def bentoml_home() -> Path:
    """BentoML's home as BentoML finds it: ``$BENTOML_HOME``, else ``~/bentoml``."""
    return Path(os.path.expandvars(os.environ.get("BENTOML_HOME") or "~/bentoml")).expanduser()


def open_registry(params: RegistryParams, features: Sequence[str]) -> Registry:
    """The registry of the configured model name (:func:`model_name` of ``features``,
    the data set's columns in order) under ``$BENTOML_HOME`` when set, else
    ``registry.bentoml_home``.

    Services started from here get the same home and name in their environment, so
    they read the same model. What killed writers left is cleared first
    (:meth:`Registry.recover`).
    """
    home = Path(os.environ.get("BENTOML_HOME") or params.bentoml_home).resolve()
    registry = Registry(home, model_name(params, features))
    registry.recover()
    return registry
