"""Our model's versions in BentoML's model store under one explicit home.

BentoML's public functions (``bentoml.models.create/list/get``) use the one store that
``$BENTOML_HOME`` names when BentoML is first used in a process; a store anywhere else
needs BentoML's internal ``ModelStore``. The registry must open the home it is given
(a test, a second project, the CLI with ``registry.bentoml_home``), so it keeps to the
store's layout, ``<home>/models/<name>/<version>/model.yaml`` plus a ``latest`` file,
and reads and writes each version through the public :class:`bentoml.Model`. The
service, started with ``BENTOML_HOME`` set to the same home, finds the same versions
through ``bentoml.models.get``, as does ``bentoml models list``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bentoml
from bentoml.models import ModelContext

from anomalyflow.registry.errors import RegistryError


class ModelFolders:
    """The versions of one model name in the model store of one home."""

    def __init__(self, home: Path, name: str) -> None:
        self.name = name
        self.root = home / "models" / name
        self._staging = home / "anomalyflow" / "staging"  # same file system, not listed

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
        return bentoml.Model.from_path(folder)

    def all(self) -> list[bentoml.Model]:
        return [self.get(version) for version in self.versions()]

    @contextmanager
    def create(self, labels: dict[str, str], metadata: dict[str, Any]) -> Iterator[bentoml.Model]:
        """A new version to fill in ``model.path``; it enters the store whole on exit."""
        model = bentoml.Model.create(
            self.name,
            module="",
            api_version="v1",
            signatures={},
            labels=labels,
            metadata=metadata,
            context=ModelContext(framework_name="", framework_versions={}),
        )
        yield model
        model.flush()  # writes model.yaml
        version = str(model.tag.version)
        self._staging.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(dir=self._staging, prefix=f"{version}-"))
        shutil.copytree(model.path, staged, dirs_exist_ok=True)
        staged.chmod(0o755)  # mkdtemp's folder is private; the store's folders are not
        os.rename(staged, self.root / version)  # one rename: the version appears whole
        self._write_latest(version)

    def _write_latest(self, version: str) -> None:
        """BentoML's ``latest`` pointer (``<name>:latest``)."""
        with tempfile.NamedTemporaryFile("w", dir=self._staging, delete=False) as latest:
            latest.write(version)
        os.replace(latest.name, self.root / "latest")
