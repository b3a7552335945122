"""Where the main job reads and writes: one place, matching what DVC will track."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from anomalyflow.params import DataParams, PathsParams


@dataclass(frozen=True)
class ArtifactPaths:
    """Files of one working directory's run."""

    data_dir: Path
    artifacts_dir: Path
    reference: Path  # history: pretraining, and the drift and GX reference
    holdout: Path  # fully labeled: evaluation and the gate
    batch: Path  # the batch taken when none is given
    incoming: Path  # where scheduled runs find new batches
    # Validation and drift of a batch other than data.batch: dvc.yaml's validate and drift
    # stages describe data.batch, so those go to a folder of the run's own (None: artifacts/)
    checks_dir: Path | None = None
    # The folder of the run holding the project (pipeline.state.exclusive_run): its
    # checkpoints and the candidate it trains, which no other run reads
    run_dir: Path | None = None

    @classmethod
    def from_params(
        cls, params: PathsParams, data: DataParams, root: Path = Path(".")
    ) -> ArtifactPaths:
        """Paths relative to ``root`` (the repository by default), as ``dvc.yaml`` names them."""
        return cls(
            root / params.data_dir,
            root / params.artifacts_dir,
            root / data.reference,
            root / data.holdout,
            root / data.batch,
            root / data.incoming,
        )

    def with_own_checks(self, folder: Path) -> ArtifactPaths:
        """These paths with the batch's validation and drift results in ``folder``."""
        return replace(self, checks_dir=folder)

    @property
    def checks(self) -> Path:
        """Where the batch's validation and drift results go."""
        return self.checks_dir or self.artifacts_dir

    @property
    def own_checks(self) -> Path:
        """The folder for the checks of batches dvc.yaml does not version, one per run."""
        return self.artifacts_dir / "checks"

    @property
    def evaluation(self) -> Path:
        return self.artifacts_dir / "evaluation.json"

    @property
    def runs(self) -> Path:
        """One folder per run holding the project; a killed run's is left for the next."""
        return self.artifacts_dir / "runs"

    @property
    def checkpoints(self) -> Path:
        """The running run's per-epoch checkpoints."""
        return self._own_folder / "checkpoints"

    @property
    def run_candidate(self) -> Path:
        """The candidate the running run trained, before and after it is published to
        :attr:`candidate`; registration reads this one."""
        return self._own_folder / "candidate"

    @property
    def _own_folder(self) -> Path:
        if self.run_dir is None:
            raise RuntimeError("a run's own files are used outside exclusive_run")
        return self.run_dir

    @property
    def backbone(self) -> Path:
        return self.artifacts_dir / "backbone"

    @property
    def candidate(self) -> Path:
        """The latest candidate, as the finetune stage publishes it for DVC and later stages."""
        return self.artifacts_dir / "candidate"

    @property
    def reports(self) -> Path:
        """One folder per run with the review page (``index.html``)."""
        return self.artifacts_dir / "reports"

    @property
    def validation(self) -> Path:
        return self.checks / "validation.json"

    @property
    def plots(self) -> Path:
        """PR and ROC curves of the candidate on the holdout, for ``dvc plots``."""
        return self.artifacts_dir / "plots"

    @property
    def comparison(self) -> Path:
        """Production's metrics on the same holdout and the paired comparison."""
        return self.artifacts_dir / "comparison.json"

    @property
    def decision(self) -> Path:
        return self.artifacts_dir / "decision.json"

    @property
    def drift(self) -> Path:
        return self.checks / "drift"

    @property
    def drift_metrics(self) -> Path:
        """The drift verdict for ``dvc metrics``."""
        return self.checks / "metrics" / "drift.json"

    @property
    def state(self) -> Path:
        """What the last training run used: batch hash and time (for skip rules)."""
        return self.artifacts_dir / "state.json"

    @property
    def reference_labels(self) -> Path:
        """Labels of the batch the latest model was trained on (label-rate drift)."""
        return self.artifacts_dir / "reference_labels.parquet"

    @property
    def metrics(self) -> Path:
        """Small metric files for ``dvc metrics show`` and ``diff``: holdout, gate, drift."""
        return self.artifacts_dir / "metrics"

    @property
    def replay(self) -> Path:
        """``anomalyflow replay``'s workspace, figures (``replay.json``) and plot."""
        return self.artifacts_dir / "replay"

    @property
    def window(self) -> Path:
        """The training window: every accepted batch, and late labels (``labels.parquet``),
        as the latest training took them (fine-tuning's DVC dependency)."""
        return self.data_dir / "window"

    @property
    def pending(self) -> Path:
        """Accepted batches and late labels that arrived since the latest training; the
        next training moves them into :attr:`window`."""
        return self.data_dir / "pending"

    @property
    def accepted(self) -> tuple[Path, Path]:
        """Where accepted batches and late labels are: trained on, and pending."""
        return self.window, self.pending

    @property
    def quarantine(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def shadow(self) -> Path:
        """The latest shadow comparison of production and a candidate."""
        return self.artifacts_dir / "shadow.json"
