"""An interrupted run resumes from its last checkpoint and ends where a clean run ends."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from anomalyflow.detector import DetectorSettings
from anomalyflow.training.finetune import finetune
from anomalyflow.training.pretrain import pretrain
from tests.conftest import make_blobs


class Interrupted(Exception):
    """Injected fault: the process dies after an epoch."""


def _die_after(epoch_to_die: int):  # type: ignore[no-untyped-def]
    def hook(epoch: int) -> None:
        if epoch == epoch_to_die:
            raise Interrupted

    return hook


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_pretraining_resumes_after_interruption(
    fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    x, _ = make_blobs(rows=600)
    s = fast_settings
    clean, _ = pretrain(x, s.model, s.pretrain, s.runtime)

    checkpoint = tmp_path / "pretrain.ckpt"
    with pytest.raises(Interrupted):
        pretrain(x, s.model, s.pretrain, s.runtime, checkpoint, on_epoch_end=_die_after(2))
    assert checkpoint.exists()
    seen: list[int] = []
    resumed, stats = pretrain(
        x, s.model, s.pretrain, s.runtime, checkpoint, on_epoch_end=seen.append
    )

    assert stats.resumed_from_epoch == 3
    assert seen[0] == 3
    assert _same_weights(clean, resumed)
    assert not checkpoint.exists()  # a finished run leaves nothing to resume from


def test_checkpoint_of_other_data_is_not_resumed(
    fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    s = fast_settings
    checkpoint = tmp_path / "pretrain.ckpt"
    x, _ = make_blobs(rows=600, seed=1)
    with pytest.raises(Interrupted):
        pretrain(x, s.model, s.pretrain, s.runtime, checkpoint, on_epoch_end=_die_after(1))
    other, _ = make_blobs(rows=600, seed=2)
    _, stats = pretrain(other, s.model, s.pretrain, s.runtime, checkpoint)
    assert stats.resumed_from_epoch == 0


def test_checkpoint_of_an_older_layout_starts_afresh(
    fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    x, _ = make_blobs(rows=600)
    s = fast_settings
    checkpoint = tmp_path / "pretrain.ckpt"
    with pytest.raises(Interrupted):
        pretrain(x, s.model, s.pretrain, s.runtime, checkpoint, on_epoch_end=_die_after(1))
    saved = torch.load(checkpoint, weights_only=True)
    del saved["layout"]  # as written before checkpoints carried a layout
    torch.save(saved, checkpoint)
    _, stats = pretrain(x, s.model, s.pretrain, s.runtime, checkpoint)
    assert stats.resumed_from_epoch == 0


@pytest.mark.parametrize("held_out", [50, 2], ids=["fixed-schedule", "early-stopping"])
def test_finetuning_resumes_after_interruption(
    fast_settings: DetectorSettings, tmp_path: Path, held_out: int
) -> None:
    x, y = make_blobs(rows=600)  # 30 anomalies, 6 held out for validation: early stopping
    s = replace(  # only when at least `held_out` are, as below 50 (the default)
        fast_settings, finetune=replace(fast_settings.finetune, min_validation_positives=held_out)
    )
    backbone, _ = pretrain(x, s.model, s.pretrain, s.runtime)
    clean, _ = finetune(backbone, x, y, s.model, s.finetune, s.runtime)

    checkpoint = tmp_path / "finetune.ckpt"
    with pytest.raises(Interrupted):
        finetune(
            backbone, x, y, s.model, s.finetune, s.runtime, checkpoint, on_epoch_end=_die_after(3)
        )
    resumed, stats = finetune(backbone, x, y, s.model, s.finetune, s.runtime, checkpoint)

    assert stats.resumed_from_epoch == 4
    assert _same_weights(clean, resumed)
    assert not checkpoint.exists()


def test_same_seed_same_weights_other_seed_other_weights(
    fast_settings: DetectorSettings,
) -> None:
    x, _ = make_blobs(rows=400)
    s = fast_settings
    first, _ = pretrain(x, s.model, s.pretrain, s.runtime)
    again, _ = pretrain(x, s.model, s.pretrain, s.runtime)
    other, _ = pretrain(x, s.model, s.pretrain, replace(s.runtime, seed=1))
    assert _same_weights(first, again)
    assert not _same_weights(first, other)
    assert np.isfinite(first.error_quantiles.numpy()).all()
