"""A drifting stream through the scheduled flow's steps, three policies side by side.

Every simulated day goes through what a scheduled run does with a batch: the GX suite
validates it, it joins the training window, the labels confirmed ``label_delay`` days
after their day arrive through the feedback path, Evidently checks drift, the retraining
policy (:func:`~anomalyflow.pipeline.policy.training_need`) decides on a simulated clock,
the fine-tune stage trains on the window and the gate's rules judge the candidate
against that policy's production on the holdout. Three policies share the stream:
``never`` keeps the first model, ``daily`` retrains every day, ``policy`` follows
params.yaml's rules.

Simplified, to fit 30 days in minutes on 2 cores: production is held in memory (no
BentoML registration, no serving smoke test); the backbone is pretrained once (the
project's own is reused when it fits); drift is checked on the features once a day for
all policies (score drift would need each policy's production); fine-tuning always
starts from the backbone; a window state is fine-tuned once and its candidate shared
by every policy that trains on it (same rows, same seed: the same weights).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from anomalyflow.data.loaders import read_reference, read_table
from anomalyflow.data.stream import Day, day_stream
from anomalyflow.detector import AnomalyDetector
from anomalyflow.drift.report import DriftResult, detect_drift
from anomalyflow.errors import Refusal
from anomalyflow.evaluation.gates import apply_policy, compare_on_holdout
from anomalyflow.evaluation.metrics import evaluate
from anomalyflow.paths import ArtifactPaths
from anomalyflow.pipeline import finetune, pretrain
from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.feedback import apply_feedback
from anomalyflow.pipeline.lineage import file_digest, training_digest
from anomalyflow.pipeline.policy import TrainingNeed, training_need
from anomalyflow.pipeline.state import RunState
from anomalyflow.pipeline.validate import validate
from anomalyflow.pipeline.window import (
    append_batch,
    read_window,
    release_pending,
    window_digest,
)
from anomalyflow.replay.outcome import Model, Track
from anomalyflow.validation.suite import DataValidationError

POLICIES = ("never", "daily", "policy")
SECONDS_PER_DAY = 86_400.0


class ReplayRefused(Refusal):
    """The replay cannot run on this project as configured."""


@dataclass(frozen=True)
class ReplaySettings:
    """The stream: its length, how late labels come, and how busy a day is."""

    days: int
    label_delay: int = 3
    rows_per_day: int = 4000

    @property
    def drift_day(self) -> int:
        """The first drifted day: half way."""
        return self.days // 2


@dataclass
class Replay:
    """One replay's workspace (``artifacts/replay/``), stream and policies."""

    ctx: RunContext
    settings: ReplaySettings
    say: Callable[[str], object]
    candidates: dict[str, Model] = field(default_factory=dict)  # by window digest

    @classmethod
    def prepare(
        cls, project: RunContext, settings: ReplaySettings, say: Callable[[str], object]
    ) -> Replay:
        """A fresh workspace beside the project's artifacts; the project's files stay as
        they are, its backbone is copied in to be reused when it fits."""
        if project.params.data.source != "synthetic":
            raise ReplayRefused(
                f"{project.params_file}: data.source: replay streams the built-in data set "
                "(synthetic); it has no day-by-day stream of your files"
            )
        workspace = workspace_of(project)
        shutil.rmtree(workspace, ignore_errors=True)
        params = project.params
        params = replace(
            params,
            paths=replace(
                params.paths,
                data_dir=str(workspace / "data"),
                artifacts_dir=str(workspace / "artifacts"),
            ),
            finetune=replace(params.finetune, warm_start="backbone"),
            runtime=replace(params.runtime, progress=False),
        )
        paths = replace(
            ArtifactPaths.from_params(params.paths, params.data), run_dir=project.paths.run_dir
        )
        if (project.paths.backbone / "detector.json").exists():
            shutil.copytree(project.paths.backbone, paths.backbone)
        ctx = RunContext(params, paths, project.schema, project.params_file)
        return cls(ctx, settings, say)

    def run(self) -> list[Track]:
        """Stream every day through every policy; the tracks, in POLICIES order."""
        first = self._first_model()
        state = RunState(window_digest=window_digest(self.ctx.paths), trained_at=0.0)
        state = replace(state, training_digest=training_digest(self.ctx.params))
        tracks = [Track(name, first, state) for name in POLICIES]
        stream = self._stream()
        for day in stream:
            drift = self._arrive(day, stream)
            now = (day.index + 1) * SECONDS_PER_DAY  # the scheduled run after the day
            for track in tracks:
                self._serve_day(track, day)
                self._decide(track, drift, now)
            self.say(_day_line(day, tracks, self.settings.drift_day))
        return tracks

    def _stream(self) -> list[Day]:
        settings, synthetic = self.settings, self.ctx.params.synthetic
        return list(day_stream(synthetic, settings.days, settings.rows_per_day, settings.drift_day))

    def _first_model(self) -> Model:
        """The model every policy starts with: the flow's first run on the built-in batch."""
        pretrain.pretrain(self.ctx)  # reused when the project's backbone fits
        batch = read_table(self.ctx.paths.batch, self.ctx.schema)
        append_batch(self.ctx.paths, batch, file_digest(self.ctx.paths.batch), self.ctx.schema.id)
        first = self._candidate()
        decision = apply_policy(first.report, None, self.ctx.params.gate)
        if not decision.approved:
            raise ReplayRefused("the first model fails the gate: nothing to replay against")
        return first

    def _arrive(self, day: Day, stream: list[Day]) -> DriftResult | None:
        """Validate the day's batch, add it to the window, deliver the labels now due.

        Returns the drift of the batch, or None when validation rejected it.
        """
        ctx, folder = self.ctx, self.ctx.paths.data_dir / "incoming"
        folder.mkdir(parents=True, exist_ok=True)
        batch_file = folder / f"day-{day.index:03d}.parquet"
        day.frame.to_parquet(batch_file, index=False)
        try:
            validate(ctx, batch_file)
        except DataValidationError:  # in quarantine, out of the window, as scheduled
            return None
        table = read_table(batch_file, ctx.schema)
        append_batch(ctx.paths, table, file_digest(batch_file), ctx.schema.id)
        due = day.index - self.settings.label_delay
        if due >= 0:
            self._feedback(stream[due])
        reference = read_reference(ctx.paths.reference, ctx.schema).frame
        assert reference is not None
        out = ctx.paths.artifacts_dir / "drift" / f"day-{day.index:03d}"
        return detect_drift(reference, day.frame, ctx.schema.features, ctx.params.drift, out)

    def _feedback(self, labeled: Day) -> None:
        """The day's confirmed frauds, as an analyst's labels file."""
        confirmed = labeled.frame.loc[labeled.confirmed == 1, self.ctx.schema.id or ""]
        if confirmed.empty:
            return
        labels_file = self.ctx.paths.data_dir / "feedback" / f"day-{labeled.index:03d}.csv"
        labels_file.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"id": confirmed, "label": 1}).to_csv(labels_file, index=False)
        apply_feedback(self.ctx.paths, self.ctx.schema, labels_file)

    def _serve_day(self, track: Track, day: Day) -> None:
        """Production scores the day's traffic as it arrives."""
        features = day.frame[list(self.ctx.schema.features)].to_numpy(np.float32)
        scores = track.production.detector.decision_function(features)
        budget = self.ctx.params.evaluation.alert_budget
        track.served(day.index, day.truth, scores, budget, self.settings.drift_day)

    def _decide(self, track: Track, drift: DriftResult | None, now: float) -> None:
        """The policy's decision after the day; train, gate and promote when it says so."""
        if drift is None:
            track.decided(TrainingNeed(False, "batch rejected by validation"))
            return
        need = self._need(track, drift, now)
        if not need.train:
            track.decided(need)
            return
        candidate = self._candidate()
        comparison = compare_on_holdout(
            self.holdout[1],
            candidate.holdout_scores,
            track.production.holdout_scores,
            self.ctx.params.gate.bootstrap_samples,
            self.ctx.params.gate.confidence_level,
            self.ctx.params.runtime.seed,
        )
        decision = apply_policy(candidate.report, comparison, self.ctx.params.gate)
        digests = window_digest(self.ctx.paths), training_digest(self.ctx.params)
        track.trained(need, candidate if decision.approved else None, now, digests)

    def _need(self, track: Track, drift: DriftResult, now: float) -> TrainingNeed:
        if track.name == "never":
            return TrainingNeed(False, "never retrains")
        if track.name == "daily":
            return TrainingNeed(True, "daily")
        return training_need(
            track.state,
            has_candidate=True,
            training_digest=training_digest(self.ctx.params),
            window_digest=window_digest(self.ctx.paths),
            drift=drift,
            rules=self.ctx.params.drift,
            now=now,
        )

    def _candidate(self) -> Model:
        """The fine-tune stage on the window as it is now, once per window state."""
        ctx = self.ctx
        digest = window_digest(ctx.paths)
        if digest not in self.candidates:
            release_pending(ctx.paths)  # as the flow does before it trains
            window = read_window(ctx.paths, ctx.schema, ctx.params.window)
            backbone_seed = ctx.params.runtime.seed  # a given seed: no checkpoint files
            tuned = finetune.finetune(ctx, window, ctx.paths.window, backbone_seed).detector
            self.candidates[digest] = self._scored(tuned)
        return self.candidates[digest]

    def _scored(self, detector: AnomalyDetector) -> Model:
        scores = detector.decision_function(self.holdout[0])
        params = self.ctx.params
        report = evaluate(
            self.holdout[1], scores, detector.threshold_, params.evaluation, params.runtime.seed
        )
        return Model(detector, scores, report)

    @cached_property
    def holdout(self) -> tuple[np.ndarray, np.ndarray]:
        """The frozen holdout's features and labels, read once for every gate."""
        table = read_table(self.ctx.paths.holdout, self.ctx.schema)
        assert table.y is not None
        return table.x, table.y


def _day_line(day: Day, tracks: list[Track], drift_day: int) -> str:
    marker = " (drifted)" if day.index >= drift_day else ""
    parts = [track.day_summary() for track in tracks]
    return f"day {day.index:>2}{marker}: " + " | ".join(parts)


def workspace_of(project: RunContext) -> Path:
    """Where a replay keeps its window, batches and drift reports: wiped at each start."""
    return project.paths.replay / "work"
