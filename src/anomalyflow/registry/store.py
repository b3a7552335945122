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

Every method taking a version accepts a unique prefix of one or the names
``production``, ``previous`` and ``latest`` (:meth:`Registry.resolve`) and works on,
returns and records the full version.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from anomalyflow.params import RegistryParams, RuntimeParams
from anomalyflow.registry.audit import AuditEntry, AuditLog, describe_errors
from anomalyflow.registry.bento_store import ModelFolders
from anomalyflow.registry.errors import AuditLogTampered, RegistryConflict, RegistryError
from anomalyflow.registry.model_version import (
    ModelVersion,
    describe,
    failed_rules,
    feature_names,
)
from anomalyflow.registry.naming import LEGACY_MODEL_NAME, audit_log_path, model_name
from anomalyflow.registry.state import InvalidTransition, RegistryState, Stage, fold
from anomalyflow.registry.verify import verified_detector, with_weights_md5

if TYPE_CHECKING:  # torch loads only where a model does: listing stays quick
    from anomalyflow.detector import AnomalyDetector

__all__ = [
    "LEGACY_MODEL_NAME",
    "REGISTERED_METRICS",
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

# The evaluation metrics copied into each version's BentoML metadata, for listings.
REGISTERED_METRICS = ("auprc", "auroc", "precision_at_alert_budget", "recall_at_target_fpr")
NAMED_VERSIONS = ("production", "previous", "latest")


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

    @property
    def audit_log(self) -> Path:
        return self.log.path

    # reading ------------------------------------------------------------------------

    def state(self) -> RegistryState:
        """The current stages, from the verified audit log (:class:`AuditLogTampered`)."""
        return fold(self.log, self.log.read().entries)

    def history(self) -> list[dict[str, Any]]:
        """Every committed change as written, oldest first, once the log is verified."""
        entries = self.log.read().entries
        fold(self.log, entries)
        return [logged.raw for logged in entries]

    def versions(self) -> list[ModelVersion]:
        """Every registered version, newest first."""
        state = self.state()
        found = [describe(model, state) for model in self.models.all()]
        return sorted(found, key=lambda v: v.created, reverse=True)

    def resolve(self, ref: str) -> str:
        """The full version ``ref`` names.

        ``ref`` is a full version, a prefix that starts exactly one registered version,
        or one of ``production``, ``previous`` (the production a rollback would
        restore) and ``latest`` (the newest registered). Nothing found, or a prefix of
        several versions (listed), is a :class:`RegistryError`.
        """
        if ref in ("production", "previous"):
            return self._named(ref)
        known = self.models.versions()
        if ref == "latest":
            if not known:
                raise RegistryError(f"no registered versions of {self.name} in {self.home}")
            return str(max(self.models.all(), key=lambda m: m.info.creation_time).tag.version)
        if ref in known:
            return ref
        matches = sorted(v for v in known if ref and v.startswith(ref))
        if not matches:
            raise RegistryError(f"no registered version matches '{ref}' in {self.name}")
        if len(matches) > 1:
            raise RegistryError(
                f"'{ref}' is ambiguous, it starts {len(matches)} versions: "
                f"{', '.join(matches)}; give more of it"
            )
        return matches[0]

    def unfinished_promotion(self) -> str | None:
        """The newest version, when it passed its gate but never became production.

        Under ``approval: auto`` every gate-passed candidate is promoted in its run; one
        still a candidate had its promotion cut short (a killed run, a failed smoke
        test), which nobody would notice otherwise. ``promote`` finishes it.
        """
        versions = self.versions()  # newest first
        if versions and versions[0].stage == "candidate" and versions[0].gate_passed:
            return versions[0].version
        return None

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
        return verified_detector(chosen.path, chosen.version, runtime)

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
        lineage = decision["lineage"]
        metrics = decision.get("candidate_metrics", {})
        metadata = {
            "threshold": float(
                json.loads((candidate_dir / "detector.json").read_text())["threshold"]
            ),
            "metrics": {k: float(metrics[k]) for k in REGISTERED_METRICS if k in metrics},
            "data_version": str(lineage.get("batch_md5", "")),
            "lineage": {k: str(v) for k, v in lineage.items()},
            "git_commit": str(decision.get("git_commit") or ""),
            "prefect_run_id": str(decision.get("prefect_run_id") or ""),
        }
        gate = "passed" if decision["approved"] else "failed"
        with self.models.create({"stage": "candidate", "gate": gate}, metadata) as model:
            target = Path(model.path)
            shutil.copytree(candidate_dir, target / "detector")
            with_weights_md5(decision, target / "detector")  # the copy is what was checked
            (target / "decision.json").write_text(json.dumps(decision, indent=2, default=str))
            np.save(target / "smoke.npy", np.asarray(smoke_batch, dtype=np.float32))
        version = str(model.tag.version)
        self._commit({"action": "register", "version": version, "gate": gate}, None)
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
        if seen.production == version:
            raise RegistryError(f"'{version}' is production already")
        if force and not (reason and reason.strip()):
            raise RegistryError("--force needs --reason: the override is recorded")
        if not chosen.gate_passed and not force:
            failed = failed_rules(chosen)
            raise RegistryError(
                f"'{version}' failed the gate ({', '.join(failed) or 'see decision.json'}); "
                'promote it anyway with --force --reason "..."'
            )
        other_features = self._features_differ(chosen, seen)
        if other_features and not force:
            raise RegistryError(f"{other_features}; promote it anyway with --force --reason")
        verified_detector(chosen.path, version)
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

    def _features_differ(self, chosen: ModelVersion, seen: RegistryState) -> str | None:
        """Why ``chosen`` scores other columns than production, or None when it does not.

        A model of other features answers traffic it was never trained on: the card
        model in front of sensor data. Such a promotion must be forced, with a reason.
        """
        if seen.production is None:
            return None
        production = describe(self.models.get(seen.production), seen)
        mine, theirs = feature_names(chosen), feature_names(production)
        if mine == theirs:
            return None
        return (
            f"'{chosen.version}' scores other features than production "
            f"'{production.version}' ({len(mine)} vs {len(theirs)}: "
            f"{', '.join(sorted(set(mine) ^ set(theirs))[:5])} differ)"
        )

    def rollback(self, reason: str | None = None, actor: str | None = None) -> RegistryState:
        """Restore the production that preceded the current one.

        Each rollback steps one further back through the earlier productions: the one
        rolled back from is not a target again until it is promoted again. A target whose
        files fail verification is refused (:class:`IntegrityError` naming it).
        """
        seen = self.state()
        if seen.production is None or not seen.previous:
            raise RegistryError(
                "nothing to roll back to: no earlier production precedes "
                f"{seen.production or 'the (absent) production'}"
            )
        target = seen.previous[-1]
        verified_detector(Path(self.models.get(target).path), target)
        return self._commit(
            {
                "action": "rollback",
                "version": target,
                "previous_production": seen.production,
                "reason": reason,
                "actor": actor,
            },
            expected_revision=seen.revision,
        )

    def record_review(self, ref: str, approved: bool, reason: str | None, actor: str | None) -> str:
        """Record a person's approval or rejection of a candidate; the full version."""
        version = self.resolve(ref)
        self._commit(
            {
                "action": "approve" if approved else "reject",
                "version": version,
                "reason": reason,
                "actor": actor,
            },
            expected_revision=None,
        )
        return version

    def _commit(self, change: dict[str, Any], expected_revision: int | None) -> RegistryState:
        """Append one change under the lock; ``expected_revision`` guards promotions."""
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "actor": change.pop("actor", None) or getpass.getuser(),
        } | change
        with self.log.locked():
            self.log.drop_torn_line()
            log = self.log.read()
            current = fold(self.log, log.entries)
            if expected_revision is not None and current.revision != expected_revision:
                raise RegistryConflict(
                    f"the registry changed while '{entry['version']}' was being promoted "
                    f"(production is now {current.production}); nothing was changed"
                )
            entry |= {"revision": current.revision + 1, "prev_sha256": log.head_sha256}
            line = json.dumps(entry, default=str)
            state = _next_state(current, line)
            self._append(line + "\n")
            self._sync_labels(state)
        return state

    def _append(self, line: str) -> None:
        """The commit point: the change has happened once its line is on disk."""
        self.log.append(line)

    def _sync_labels(self, state: RegistryState) -> None:
        """Copy each version's stage into its BentoML labels (``model.yaml``)."""
        for model in self.models.all():
            stage = state.stage_of(str(model.tag.version))
            if model.info.labels.get("stage") == stage:
                continue
            model.info.labels["stage"] = stage
            descriptor = Path(model.path) / "model.yaml"
            with tempfile.NamedTemporaryFile(
                "w", dir=descriptor.parent, delete=False, suffix=".tmp"
            ) as staged:
                model.info.dump(staged)
            os.replace(staged.name, descriptor)


def bentoml_home() -> Path:
    """BentoML's home as BentoML finds it: ``$BENTOML_HOME``, else ``~/bentoml``."""
    return Path(os.path.expandvars(os.environ.get("BENTOML_HOME") or "~/bentoml")).expanduser()


def open_registry(params: RegistryParams, features: Sequence[str]) -> Registry:
    """The registry of the configured model name (:func:`model_name` of ``features``,
    the data set's columns in order) under ``$BENTOML_HOME`` when set, else
    ``registry.bentoml_home``.

    Services started from here get the same home and name in their environment, so
    they read the same model.
    """
    home = Path(os.environ.get("BENTOML_HOME") or params.bentoml_home).resolve()
    return Registry(home, model_name(params, features))


def _next_state(current: RegistryState, line: str) -> RegistryState:
    """The state after ``line``, checked as a reader will check it, before it is written."""
    entry = json.loads(line)
    try:
        return current.apply(AuditEntry.model_validate_json(line))
    except ValidationError as invalid:
        rule = describe_errors(invalid)
    except InvalidTransition as invalid:
        rule = str(invalid)
    raise RegistryError(f"refused to record {entry['action']} of '{entry['version']}': {rule}")
