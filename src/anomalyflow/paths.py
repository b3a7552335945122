"""Where the main job reads and writes: one place, matching what DVC will track."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anomalyflow.params import PathsParams


@dataclass(frozen=True)
class ArtifactPaths:
    """Files of one working directory's run."""

    data_dir: Path
    artifacts_dir: Path

    @classmethod
    def from_params(cls, params: PathsParams, root: Path = Path(".")) -> ArtifactPaths:
        """Paths relative to ``root`` (the repository by default)."""
        return cls(root / params.data_dir, root / params.artifacts_dir)

    @property
    def history(self) -> Path:
        return self.data_dir / "history.parquet"

    @property
    def recent(self) -> Path:
        return self.data_dir / "recent.parquet"

    @property
    def holdout(self) -> Path:
        return self.data_dir / "holdout.parquet"

    @property
    def model(self) -> Path:
        return self.artifacts_dir / "model"

    @property
    def evaluation(self) -> Path:
        return self.artifacts_dir / "evaluation.json"

    @property
    def checkpoints(self) -> Path:
        return self.artifacts_dir / "checkpoints"
