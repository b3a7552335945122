"""Pretraining from a streamed reference: the in-memory run's twin, and data-parallel ranks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from anomalyflow.data.reference_stream import ReferenceStream
from anomalyflow.data.scaling import RobustScaler
from anomalyflow.data.schema import Schema
from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.training.distributed import (
    RankFailed,
    reference_for_pretraining,
    rows_in_memory,
)
from anomalyflow.training.streamed import ScaledReference, pretrain_streamed
from tests.conftest import make_blobs

FEATURES = tuple(f"f{j}" for j in range(6))
SCHEMA = Schema(features=FEATURES)


def _reference(path: Path, rows: int, group_rows: int) -> np.ndarray:
    x, _ = make_blobs(rows=rows)
    frame = pd.DataFrame(x, columns=list(FEATURES))
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=group_rows
    )
    return x


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _with_pretrain(settings: DetectorSettings, **changes: object) -> DetectorSettings:
    return replace(settings, pretrain=replace(settings.pretrain, **changes))


def test_a_reference_that_fits_trains_the_in_memory_backbone(
    fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    path = tmp_path / "ref.parquet"
    x = _reference(path, rows=1200, group_rows=250)

    in_memory = AnomalyDetector(fast_settings).pretrain(x, FEATURES)
    streamed = AnomalyDetector(fast_settings).pretrain(ReferenceStream(path, SCHEMA))

    assert _same_weights(in_memory.backbone_, streamed.backbone_)
    assert in_memory.stats_["pretrain"].epoch_losses == streamed.stats_["pretrain"].epoch_losses
    np.testing.assert_array_equal(in_memory.decision_function(x), streamed.decision_function(x))


def test_a_reference_beyond_memory_rows_trains_in_buffers(
    fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    path = tmp_path / "ref.parquet"
    x = _reference(path, rows=3000, group_rows=400)
    settings = _with_pretrain(fast_settings, memory_rows=1000)

    detector = AnomalyDetector(settings).pretrain(ReferenceStream(path, SCHEMA))

    stats = detector.stats_["pretrain"]
    assert stats.world_size == 1
    # 2,400 training rows in batches of 256: a buffer's remainder goes on to the next
    # buffer, so an epoch takes 10 steps with only its last one short, as in memory
    assert stats.steps == stats.epochs * 10
    assert np.isfinite(stats.final_loss)
    assert np.isfinite(detector.decision_function(x)).all()


def test_two_cpu_ranks_train_one_backbone_that_loads_and_scores(
    fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    path = tmp_path / "ref.parquet"
    x, y = make_blobs(rows=1200)
    frame = pd.DataFrame(x, columns=list(FEATURES))
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=150)
    settings = _with_pretrain(fast_settings, nproc=2, max_epochs=3)

    detector = AnomalyDetector(settings).pretrain(ReferenceStream(path, SCHEMA))
    detector.refit_threshold(x, None)
    detector.save(tmp_path / "backbone")

    saved = json.loads((tmp_path / "backbone" / "detector.json").read_text())
    assert saved["training"]["pretrain"]["world_size"] == 2
    assert saved["settings"]["pretrain"]["nproc"] == 2
    loaded = AnomalyDetector.load(tmp_path / "backbone")
    scores = loaded.decision_function(x)
    assert np.isfinite(scores).all()
    assert scores[y == 1].mean() > scores[y == 0].mean()


def test_a_rank_that_fails_fails_the_run_naming_rank_and_error(
    fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    path = tmp_path / "ref.parquet"
    x = _reference(path, rows=1200, group_rows=150)
    stream = ReferenceStream(path, SCHEMA)
    settings = _with_pretrain(fast_settings, nproc=2)
    stream.sample(settings.pretrain.memory_rows, settings.runtime.seed)  # read while sound
    x[1000, 2] = np.nan  # then the file changes under the run: a rank meets the bad row
    frame = pd.DataFrame(x, columns=list(FEATURES))
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=150)
    detector = AnomalyDetector(settings)

    with pytest.raises(RankFailed, match=r"rank [01] of 2 failed: InputError: .*'f2'.* row 1000"):
        detector.pretrain(stream)
    assert detector.backbone_ is None  # nothing trained to save


def test_the_stage_streams_only_what_it_must(
    fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    path = tmp_path / "ref.parquet"
    x = _reference(path, rows=3000, group_rows=500)
    pretrain = fast_settings.pretrain
    csv = tmp_path / "ref.csv"
    pd.DataFrame(x, columns=list(FEATURES)).to_csv(csv, index=False)

    fits = reference_for_pretraining(path, SCHEMA, pretrain)
    assert isinstance(fits, np.ndarray)  # as read before: the default path is unchanged
    np.testing.assert_array_equal(fits, x)
    too_large = replace(pretrain, memory_rows=1000)
    assert isinstance(reference_for_pretraining(path, SCHEMA, too_large), ReferenceStream)
    shared = replace(pretrain, nproc=2)
    assert isinstance(reference_for_pretraining(path, SCHEMA, shared), ReferenceStream)
    assert isinstance(reference_for_pretraining(csv, SCHEMA, too_large), np.ndarray)
    sample = rows_in_memory(reference_for_pretraining(path, SCHEMA, too_large), too_large, 0)
    assert sample.shape == (1000, len(FEATURES))


class _Interrupted(Exception):
    """Injected fault: the process dies after an epoch."""


def _die_after_epoch_two(epoch: int) -> None:
    if epoch == 2:
        raise _Interrupted


def test_a_streamed_run_resumes_from_its_checkpoint(
    fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    path = tmp_path / "ref.parquet"
    x = _reference(path, rows=2400, group_rows=300)
    s = _with_pretrain(fast_settings, memory_rows=1000)
    reference = ScaledReference(ReferenceStream(path, SCHEMA), RobustScaler().fit(x))
    clean, _ = pretrain_streamed(reference, s.model, s.pretrain, s.runtime)

    checkpoint = tmp_path / "pretrain.ckpt"
    with pytest.raises(_Interrupted):
        pretrain_streamed(
            reference, s.model, s.pretrain, s.runtime, checkpoint, _die_after_epoch_two
        )
    resumed, stats = pretrain_streamed(reference, s.model, s.pretrain, s.runtime, checkpoint)

    assert stats.resumed_from_epoch == 3
    assert _same_weights(clean, resumed)
    assert not checkpoint.exists()
