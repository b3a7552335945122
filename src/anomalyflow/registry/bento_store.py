"""Our model's versions in BentoML's model store under one explicit home.

BentoML's public functions (``bentoml.models.create/list/get``) use the one store that
``$BENTOML_HOME`` names when BentoML is first used in a process; a store anywhere else
needs BentoML's internal ``ModelStore``. The registry must open the home it is given
(a test, a second project, the CLI with ``registry.bentoml_home``), so it keeps to the
store's layout, ``<home>/models/<name>/<version>/model.yaml`` plus a ``latest`` file,
and reads and writes each version through the public :class:`bentoml.Model`. The
service, started with ``BENTOML_HOME`` set to the same home, finds the same versions
through ``bentoml.models.get``, as does ``bentoml models list``.

A new version is built in ``<home>/anomalyflow/staging`` (the store's file system, so
one rename puts it in place whole) under a name that starts with the writer's process
id: a copy whose writer is no longer running was cut short, and :meth:`ModelFolders.sweep`
removes it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, Any

import bentoml
from bentoml.models import ModelContext

from anomalyflow.registry.errors import AuditLogTampered, RegistryError

REGISTERING = ".registering"  # in a stored folder whose register line is not written yet


def stored_version_holding(folder: Path) -> Path | None:
    """The model store's version folder that ``folder`` lies in, if it lies in one.

    A stored version is what its audit log and hashes recorded; a command that saves a
    model folder must refuse one of these rather than change it in place.
    """
    for parent in (folder.resolve(), *folder.resolve().parents):
        if (parent / "model.yaml").is_file():
            return parent
    return None


class ModelFolders:
    """The versions of one model name in the model store of one home."""

    def __init__(self, home: Path, name: str) -> None:
        self.name = name
        self.root = home / "models" / name
        self.staging = home / "anomalyflow" / "staging"  # same file system, not listed

    def versions(self) -> list[str]:
        """Every stored version (unordered names of complete folders)."""
        if not self.root.is_dir():
            return []
        return [p.name for p in self.root.iterdir() if (p / "model.yaml").is_file()]

    def get(self, version: str) -> bentoml.Model:
        """One stored version by its full name (the caller resolved it)."""
        folder = self.root / version
        if not (folder / "model.yaml").is_file():
            raise RegistryError(f"version '{version}' is not in the model store {self.root}")
        try:
            return bentoml.Model.from_path(folder)
        except Exception as error:  # YAML, BentoML's and cattrs' errors: the file is bad
            raise RegistryError(f"{folder / 'model.yaml'}: cannot be read ({error})") from None

    def all(self) -> list[bentoml.Model]:
        return [self.get(version) for version in self.versions()]

    def stage(
        self, labels: dict[str, str], metadata: dict[str, Any], fill: Callable[[Path], None]
    ) -> tuple[str, Path]:
        """A new version, filled in by ``fill(folder)``, whole in staging: its version and
        staged folder, for :meth:`publish`. Nothing is left behind when it fails."""
        model = bentoml.Model.create(
            self.name,
            module="",
            api_version="v1",
            signatures={},
            labels=labels,
            metadata=metadata,
            context=ModelContext(framework_name="", framework_versions={}),
        )
        try:
            fill(Path(model.path))
            model.flush()  # writes model.yaml
            version = str(model.tag.version)
            self.staging.mkdir(parents=True, exist_ok=True)
            staged = Path(tempfile.mkdtemp(dir=self.staging, prefix=_mine(version)))
            try:
                shutil.copytree(model.path, staged, dirs_exist_ok=True)
                staged.chmod(0o755)  # mkdtemp's folder is private; the store's folders are not
            except BaseException:  # a full disk, an interrupt: no half copy stays
                shutil.rmtree(staged, ignore_errors=True)
                raise
        finally:
            shutil.rmtree(model.path, ignore_errors=True)  # BentoML's folder under /tmp
        return version, staged

    def publish(self, version: str, staged: Path) -> None:
        """Move a staged version into the store (one rename: it appears whole), marked as
        being registered until :meth:`registered` clears the mark."""
        (staged / REGISTERING).touch()
        self.root.mkdir(parents=True, exist_ok=True)
        os.rename(staged, self.root / version)
        self._write_latest(version)

    def registered(self, version: str) -> None:
        """Clear the mark :meth:`publish` set, once the version's register line is written."""
        (self.root / version / REGISTERING).unlink(missing_ok=True)

    def refuse_unlisted(self, registered: Collection[str], audit_log: Path) -> None:
        """Refuse a log whose ``registered`` versions lack complete stored ones (no
        registration was writing them): the log lost lines, and what it lacks (a
        production, a rollback) would otherwise be decided without them."""
        unlisted = sorted(
            v
            for v in self.versions()
            if v not in registered and not (self.root / v / REGISTERING).exists()
        )
        if unlisted:
            raise AuditLogTampered(
                f"{audit_log}: the model store holds {len(unlisted)} version(s) this log "
                f"does not register ({', '.join(unlisted)}): the log was lost, replaced or "
                f"cut short; restore it from a backup (or move those folders out of {self.root})"
            )

    def discard(self, version: str) -> None:
        """Remove a stored version's folder (one whose registration failed)."""
        shutil.rmtree(self.root / version, ignore_errors=True)
        latest = self.root / "latest"
        if latest.is_file() and latest.read_text().strip() not in self.versions():
            remaining = self.all()
            if remaining:
                newest = max(remaining, key=lambda m: m.info.creation_time)
                self._write_latest(str(newest.tag.version))
            else:
                latest.unlink()

    def sweep(self, registered: Collection[str] | None) -> None:
        """Remove what writers that are no longer running left: staged copies, and, when
        ``registered`` (the versions the audit log registers) is known, stored folders
        still marked as being registered that are not among them. A complete version the
        log lacks is never removed: the log, not the version, is what was lost."""
        for entry in self.staging.iterdir() if self.staging.is_dir() else []:
            if not _writer_running(entry.name):
                _remove(entry)
        if registered is None:
            return
        for version in self.versions():
            if (self.root / version / REGISTERING).exists():
                if version in registered:
                    self.registered(version)  # the writer died after its line was written
                else:
                    self.discard(version)

    def label_stages(
        self, stage_of: Callable[[str], str], models: list[bentoml.Model] | None = None
    ) -> None:
        """Copy each version's stage into the BentoML labels (``model.yaml``) of ``models``
        (every stored version unless given)."""
        for model in self.all() if models is None else models:
            stage = stage_of(str(model.tag.version))
            if model.info.labels.get("stage") == stage:
                continue
            model.info.labels["stage"] = stage
            self._replace(Path(model.path) / "model.yaml", model.info.dump)

    def _write_latest(self, version: str) -> None:
        """BentoML's ``latest`` pointer (``<name>:latest``)."""
        self._replace(self.root / "latest", lambda latest: latest.write(version))

    def _replace(self, target: Path, write: Callable[[IO[str]], object]) -> None:
        """Replace a small file of the store whole: written in staging (where a killed
        writer's copy is swept), then renamed over ``target``."""
        self.staging.mkdir(parents=True, exist_ok=True)
        handle, staged = tempfile.mkstemp(dir=self.staging, prefix=_mine(target.name))
        try:
            with os.fdopen(handle, "w") as file:
                write(file)
            os.chmod(staged, 0o644)  # mkstemp's file is private; the store's files are not
            os.replace(staged, target)
        except BaseException:
            Path(staged).unlink(missing_ok=True)
            raise


def _mine(what: str) -> str:
    """The start of a staging entry's name: this process's id, then what it holds."""
    return f"{os.getpid()}-{what}-"


def _writer_running(entry: str) -> bool:
    """Whether the process named at the start of a staging entry is still running.

    An entry without a process id was written before entries carried one: by a process
    of an earlier AnomalyFlow, long gone. A reused process id keeps an entry until that
    process ends too: it is swept later, never early.
    """
    pid, _, _ = entry.partition("-")
    if not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True  # ours: being written now
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)
