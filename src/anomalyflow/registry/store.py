"""Model versions and their stages over the BentoML model store.

Every version the pipeline registers is a BentoML model ``anomalyflow-detector:<version>``
holding the detector files (weights, scaler, threshold), the decision record and a
smoke batch; its labels carry the stage and the gate outcome, its metadata the
threshold, key metrics and lineage, so ``bentoml models list`` shows them too.

Which version is production follows from one append-only audit log: each change is one
line appended under an exclusive lock, after checking that nobody else changed the
registry since the caller looked. A change has happened exactly when its line is in the
log, so a crash mid-promotion leaves the previous state, two promotions at once cannot
both win, and there is never more than one production version. Stage labels are copied
from the log after every change.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import bentoml
import numpy as np
from bentoml._internal.models import ModelStore  # an explicit home, not the global one
from bentoml.exceptions import NotFound

from anomalyflow.detector import AnomalyDetector
from anomalyflow.params import RegistryParams

MODEL_NAME = "anomalyflow-detector"
Stage = Literal["candidate", "production", "archived"]
KEY_METRICS = ("auprc", "auroc", "precision_at_alert_budget", "recall_at_target_fpr")


class RegistryError(RuntimeError):
    """A registry request that cannot be carried out; nothing was changed."""


class RegistryConflict(RegistryError):
    """Someone else changed the registry between our look and our commit."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version, as ``anomalyflow models`` lists it."""

    version: str
    stage: Stage
    gate_passed: bool
    created: datetime
    threshold: float
    metrics: dict[str, float]
    data_version: str
    path: Path

    @property
    def detector_dir(self) -> Path:
        return self.path / "detector"

    @property
    def smoke_batch(self) -> Path:
        return self.path / "smoke.npy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stage": self.stage,
            "gate": "passed" if self.gate_passed else "failed",
            "created": self.created.isoformat(timespec="seconds"),
            "threshold": self.threshold,
            "metrics": self.metrics,
            "data_version": self.data_version,
        }


@dataclass(frozen=True)
class RegistryState:
    """The stages that the audit log's changes add up to."""

    revision: int = 0  # number of changes so far
    production: str | None = None
    previous: tuple[str, ...] = ()  # earlier productions, latest last: rollback targets
    archived: frozenset[str] = field(default_factory=frozenset)

    def stage_of(self, version: str) -> Stage:
        if version == self.production:
            return "production"
        return "archived" if version in self.archived else "candidate"

    def apply(self, entry: dict[str, Any]) -> RegistryState:
        """The state after one audit entry."""
        revision = self.revision + 1
        if entry["action"] == "promote":
            previous, archived = self.previous, set(self.archived)
            if self.production is not None:
                previous += (self.production,)
                archived.add(self.production)
            archived.discard(entry["version"])
            return RegistryState(revision, entry["version"], previous, frozenset(archived))
        if entry["action"] == "rollback":
            archived = set(self.archived) - {entry["version"]}
            if self.production is not None:
                archived.add(self.production)
            return RegistryState(
                revision, entry["version"], self.previous[:-1], frozenset(archived)
            )
        return RegistryState(revision, self.production, self.previous, self.archived)


class Registry:
    """The registry under one BentoML home (``models/`` plus ``anomalyflow/audit.jsonl``)."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.store = ModelStore(str(self.home / "models"))
        self.audit_log = self.home / "anomalyflow" / "audit.jsonl"

    # reading ------------------------------------------------------------------------

    def state(self) -> RegistryState:
        """The current stages, from the audit log."""
        state = RegistryState()
        for entry in self.history():
            state = state.apply(entry)
        return state

    def history(self) -> list[dict[str, Any]]:
        """Every committed change, oldest first (a torn last line was never committed)."""
        if not self.audit_log.exists():
            return []
        entries = []
        for line in self.audit_log.read_text().split("\n"):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return entries

    def versions(self) -> list[ModelVersion]:
        """Every registered version, newest first."""
        try:
            models = self.store.list(MODEL_NAME)
        except NotFound:
            return []
        state = self.state()
        found = [_describe(m, state) for m in models]
        return sorted(found, key=lambda v: v.created, reverse=True)

    def get(self, version: str) -> ModelVersion:
        """One version; an unknown version is a :class:`RegistryError` naming it."""
        try:
            model = self.store.get(f"{MODEL_NAME}:{version}")
        except NotFound:
            raise RegistryError(f"no registered version '{version}'") from None
        return _describe(model, self.state())

    def production(self) -> ModelVersion | None:
        """The production version, if one was ever promoted."""
        version = self.state().production
        return self.get(version) if version else None

    def load(self, version: str | None = None) -> AnomalyDetector:
        """The detector of ``version`` (production by default)."""
        chosen = self.get(version) if version else self.production()
        if chosen is None:
            raise RegistryError("no production model yet: promote a version first")
        return AnomalyDetector.load(chosen.detector_dir)

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
        lineage = decision.get("lineage", {})
        metrics = decision.get("candidate_metrics", {})
        metadata = {
            "threshold": float(
                json.loads((candidate_dir / "detector.json").read_text())["threshold"]
            ),
            "metrics": {k: float(metrics[k]) for k in KEY_METRICS if k in metrics},
            "data_version": str(lineage.get("batch_md5", "")),
            "lineage": {k: str(v) for k, v in lineage.items()},
            "git_commit": str(decision.get("git_commit") or ""),
            "prefect_run_id": str(decision.get("prefect_run_id") or ""),
        }
        labels = {"stage": "candidate", "gate": "passed" if decision["approved"] else "failed"}
        with bentoml.models.create(
            MODEL_NAME, labels=labels, metadata=metadata, _model_store=self.store
        ) as model:
            target = Path(model.path)
            shutil.copytree(candidate_dir, target / "detector")
            (target / "decision.json").write_text(json.dumps(decision, indent=2, default=str))
            np.save(target / "smoke.npy", np.asarray(smoke_batch, dtype=np.float32))
        version = model.tag.version
        assert version is not None
        self._commit({"action": "register", "version": version}, expected_revision=None)
        return self.get(version)

    def promote(
        self,
        version: str,
        smoke_test: Callable[[ModelVersion], dict[str, Any]],
        *,
        force: bool = False,
        reason: str | None = None,
        actor: str | None = None,
    ) -> RegistryState:
        """Make ``version`` production and archive the previous one.

        A version whose gate failed is refused unless ``force`` with a ``reason``, both
        recorded. ``smoke_test`` must pass first: it runs outside the lock (it starts a
        server), so the commit then checks nobody changed the registry meanwhile.
        """
        seen = self.state()
        chosen = self.get(version)
        if seen.production == version:
            raise RegistryError(f"'{version}' is production already")
        if force and not (reason and reason.strip()):
            raise RegistryError("--force needs --reason: the override is recorded")
        if not chosen.gate_passed and not force:
            failed = _failed_rules(chosen)
            raise RegistryError(
                f"'{version}' failed the gate ({', '.join(failed) or 'see decision.json'}); "
                'promote it anyway with --force --reason "..."'
            )
        smoke = smoke_test(chosen)
        return self._commit(
            {
                "action": "promote",
                "version": version,
                "previous_production": seen.production,
                "forced": force and not chosen.gate_passed,
                "reason": reason,
                "smoke_test": smoke,
                "actor": actor,
            },
            expected_revision=seen.revision,
        )

    def rollback(self, reason: str | None = None, actor: str | None = None) -> RegistryState:
        """Restore the previous production version in one step."""
        seen = self.state()
        if seen.production is None or not seen.previous:
            raise RegistryError("nothing to roll back to: there is no previous production")
        return self._commit(
            {
                "action": "rollback",
                "version": seen.previous[-1],
                "previous_production": seen.production,
                "reason": reason,
                "actor": actor,
            },
            expected_revision=seen.revision,
        )

    def record_review(
        self, version: str, approved: bool, reason: str | None, actor: str | None
    ) -> None:
        """Record a person's approval or rejection of a candidate."""
        self.get(version)
        self._commit(
            {
                "action": "approve" if approved else "reject",
                "version": version,
                "reason": reason,
                "actor": actor,
            },
            expected_revision=None,
        )

    def _commit(self, entry: dict[str, Any], expected_revision: int | None) -> RegistryState:
        """Append one change under the lock; ``expected_revision`` guards promotions."""
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "actor": entry.pop("actor", None) or getpass.getuser(),
        } | entry
        with self._locked():
            self._drop_torn_line()
            current = self.state()
            if expected_revision is not None and current.revision != expected_revision:
                raise RegistryConflict(
                    f"the registry changed while '{entry['version']}' was being promoted "
                    f"(production is now {current.production}); nothing was changed"
                )
            entry["revision"] = current.revision + 1
            self._append(json.dumps(entry, default=str) + "\n")
            state = current.apply(entry)
            self._sync_labels(state)
        return state

    def _append(self, line: str) -> None:
        """The commit point: the change has happened once its line is on disk."""
        with self.audit_log.open("a") as log:
            log.write(line)
            log.flush()
            os.fsync(log.fileno())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.audit_log.parent.mkdir(parents=True, exist_ok=True)
        with (self.audit_log.parent / "registry.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _drop_torn_line(self) -> None:
        """Cut a line a crash left half-written, so the next change starts cleanly."""
        if not self.audit_log.exists():
            return
        text = self.audit_log.read_text()
        if text and not text.endswith("\n"):
            with self.audit_log.open("r+") as log:
                log.truncate(text.rfind("\n") + 1)

    def _sync_labels(self, state: RegistryState) -> None:
        """Copy each version's stage into its BentoML labels (``model.yaml``)."""
        try:
            models = self.store.list(MODEL_NAME)
        except NotFound:
            return
        for model in models:
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


def open_registry(params: RegistryParams) -> Registry:
    """The registry under ``$BENTOML_HOME`` when set, else ``registry.bentoml_home``.

    Services started from here get the same home in their environment, so they read
    the same model store.
    """
    return Registry(Path(os.environ.get("BENTOML_HOME") or params.bentoml_home).resolve())


def _describe(model: Any, state: RegistryState) -> ModelVersion:
    metadata = model.info.metadata
    return ModelVersion(
        version=str(model.tag.version),
        stage=state.stage_of(str(model.tag.version)),
        gate_passed=model.info.labels.get("gate") == "passed",
        created=model.info.creation_time,
        threshold=float(metadata["threshold"]),
        metrics=dict(metadata.get("metrics", {})),
        data_version=str(metadata.get("data_version", "")),
        path=Path(model.path),
    )


def _failed_rules(version: ModelVersion) -> list[str]:
    decision = json.loads((version.path / "decision.json").read_text())
    return [r["rule"] for r in decision.get("rules", []) if not r.get("passed")]
