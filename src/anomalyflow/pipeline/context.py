"""What every stage of one run shares: params, where files are, the columns' roles."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from anomalyflow.data.schema import Schema
from anomalyflow.params import Params, load_params
from anomalyflow.paths import ArtifactPaths
from anomalyflow.pipeline.data import prepare_data


@dataclass(frozen=True)
class RunContext:
    """Built once per run (or per stage command) and handed to every stage."""

    params: Params
    paths: ArtifactPaths
    schema: Schema
    params_file: Path

    @classmethod
    def prepare(cls, params_file: Path | str, regenerate: bool = False) -> RunContext:
        """Load params and put the reference and holdout in place (see ``prepare_data``).

        Raises:
            ParamsError: ``params.yaml`` is missing or breaks a rule.
            InputError: the reference or holdout is missing or unsound.
        """
        params = load_params(params_file)
        paths = ArtifactPaths.from_params(params.paths, params.data)
        return cls(params, paths, prepare_data(params, paths, regenerate), Path(params_file))

    def with_own_checks(self, batch: Path) -> RunContext:
        """This context with the validation and drift of ``batch`` in a folder of its own
        (``artifacts/checks/<UTC time>-<batch>/``): a batch dvc.yaml does not version
        must not overwrite the results it does."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        folder = self.paths.own_checks / f"{stamp}-{batch.stem}"
        return replace(self, paths=self.paths.with_own_checks(folder))

    def in_run_folder(self, folder: Path) -> RunContext:
        """This context with the run's own files (checkpoints, candidate) in ``folder``."""
        return replace(self, paths=replace(self.paths, run_dir=folder))
