"""Fine-tuning: a new scoring head on the pretrained encoder, trained with few labels.

Labels follow the few-label protocol: 1 = a labeled anomaly, 0 = normal or simply not
labeled. Positives are rare, so every batch mixes a share of them. The loss is pairwise:
each labeled anomaly should score above each unlabeled row of the batch. Unlabeled rows
include unlabeled anomalies, so a loss that drives every unlabeled logit down (balanced
cross-entropy) also unlearns the reconstruction ranking the head starts from; a ranking
loss only asks for order, which with one to a few labels does that ranking far less
harm. The unlabeled rows nearest a labeled anomaly in the pretrained embedding are the
likeliest unlabeled anomalies, so they are left out of the negatives altogether. The
encoder starts frozen so the new head cannot wreck the pretrained representation, then
trains at a fraction of the head's learning rate.

The head adds the label-free reconstruction score with a learned weight, and that weight
learns 300 times faster than the rest: within a few steps the labeled anomalies
say whether they score high without labels (keep the weight) or not (drop it, and rank by
what the labels teach). At the head's own rate it barely moved in ten epochs.

Once the network is trained, a linear half is fitted on the same labels
(``training/linear.py``) and the returned scorer adds the two scores.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch import nn
from tqdm.auto import tqdm

from anomalyflow.data.splits import stratified_split
from anomalyflow.device import autocast, resolve_device, seed_everything
from anomalyflow.models.backbone import Backbone
from anomalyflow.models.networks import ScoringHead, TabularEncoder
from anomalyflow.models.scorer import ScoringModel
from anomalyflow.params import FinetuneParams, ModelParams, RuntimeParams
from anomalyflow.training.checkpoint import (
    fingerprint,
    load_checkpoint,
    remove_checkpoint,
    save_checkpoint,
)
from anomalyflow.training.linear import fit_linear_score
from anomalyflow.training.loop import (
    TrainingStats,
    batches,
    epoch_budget,
    epoch_generator,
    resolve_batch_size,
)

_SCORE_BATCH = 4096


def finetune(
    backbone: Backbone | None,
    x: np.ndarray,
    y: np.ndarray,
    model: ModelParams,
    params: FinetuneParams,
    runtime: RuntimeParams,
    checkpoint: Path | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    start_from: ScoringModel | None = None,
) -> tuple[ScoringModel, TrainingStats]:
    """Train a scoring model on scaled rows and partial labels.

    Args:
        backbone: the pretrained backbone, or ``None`` to train the same network from
            scratch (the ablation that shows what pretraining earns).
        x: scaled rows ``(rows, features)``.
        y: ``(rows,)`` with 1 for labeled anomalies and 0 for the rest; at least one 1.
        checkpoint: file written after every epoch; a matching run resumes from it.
        start_from: a trained scoring model to continue (warm start) instead of a new
            head on ``backbone``; its own backbone stays frozen.

    Returns:
        The scoring model on the CPU (the best epoch on validation AUPRC when enough
        labels allow a validation split) and the run's statistics.
    """
    if not (y == 1).any():
        raise ValueError("fine-tuning needs at least one labeled anomaly (y == 1)")
    device = resolve_device(runtime.device)
    seed_everything(runtime.seed)
    n_features = x.shape[1]
    if start_from is not None:
        scorer = copy.deepcopy(start_from)
        scorer.linear = None  # refitted on the new labels below
        backbone = scorer.backbone
        if backbone is not None:
            backbone.requires_grad_(False).eval()
    else:
        if backbone is not None:
            encoder = copy.deepcopy(backbone.encoder)
            backbone = copy.deepcopy(backbone).requires_grad_(False).eval()
        else:
            encoder = TabularEncoder(n_features, model.hidden_dim, model.embedding_dim)
        scorer = ScoringModel(
            backbone, encoder, ScoringHead(model.embedding_dim, model.head_hidden_dim)
        )
    scorer = scorer.to(device)
    pretrained = backbone is not None

    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    reconstruction = _reconstruction_scores(scorer, data, device)
    train_rows, validation_rows = _validation_split(y, params, runtime.seed)
    positives = torch.from_numpy(train_rows[y[train_rows] == 1])
    negatives = _likely_normal(
        scorer.encoder, data, positives, train_rows[y[train_rows] == 0], params.near_anomaly_share
    )
    batch_size = resolve_batch_size(params.batch_size, len(train_rows))
    positives_per_batch = max(1, batch_size // 4)
    epochs = epoch_budget(len(negatives), batch_size, params.max_epochs, params.max_steps)
    frozen_epochs = params.frozen_epochs if pretrained else 0
    head_lr = params.learning_rate
    encoder_lr = head_lr * params.encoder_lr_ratio if pretrained else head_lr
    optimizer = torch.optim.AdamW(
        [
            {"params": scorer.head.mlp.parameters(), "lr": head_lr},
            {"params": scorer.encoder.parameters(), "lr": encoder_lr},
            {"params": [scorer.head.skip_weight], "lr": head_lr * params.skip_lr_ratio},
        ],
        weight_decay=params.weight_decay,
    )

    run_id = fingerprint(
        x,
        y,
        settings={
            "model": asdict(model),
            "finetune": asdict(params),
            "seed": runtime.seed,
            "pretrained": pretrained,
            "backbone": _state_digest(backbone),
            "start_from": _state_digest(start_from),
        },
    )
    track: dict[str, Any] = {"epoch": 0, "best_metric": -1.0, "best_state": None, "stale": 0}
    if validation_rows is not None:
        track["best_metric"] = _validation_auprc(
            scorer, data, reconstruction, validation_rows, y, device
        )
        track["best_state"] = copy.deepcopy(scorer.state_dict())
    state = load_checkpoint(checkpoint, run_id)
    if state is not None:
        scorer.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        track = state["track"]
    start_epoch = int(track["epoch"])

    steps = rows_seen = 0
    loss_value = float("nan")
    started = time.perf_counter()
    bar = tqdm(
        range(start_epoch, epochs),
        desc="fine-tune",
        unit="epoch",
        disable=not runtime.progress,
        leave=False,
    )
    for epoch in bar:
        frozen = epoch < frozen_epochs
        scorer.encoder.requires_grad_(not frozen)
        optimizer.param_groups[1]["lr"] = 0.0 if frozen else encoder_lr
        scorer.train()
        generator = epoch_generator(runtime.seed, epoch)
        for negative_batch in batches(
            negatives[torch.randperm(len(negatives), generator=generator)], batch_size
        ):
            draw = torch.randint(len(positives), (positives_per_batch,), generator=generator)
            positive_batch = positives[draw]
            index = torch.cat([positive_batch, negative_batch]).to(device)
            with autocast(device):
                logits = scorer.logits(data[index], reconstruction[index]).float()
            loss = pairwise_loss(logits[: len(positive_batch)], logits[len(positive_batch) :])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            steps += 1
            rows_seen += len(index)
            loss_value = float(loss.detach())
        track["epoch"] = epoch + 1
        stop = False
        if validation_rows is not None:
            metric = _validation_auprc(scorer, data, reconstruction, validation_rows, y, device)
            if metric > track["best_metric"]:
                track.update(
                    best_metric=metric, best_state=copy.deepcopy(scorer.state_dict()), stale=0
                )
            elif not frozen:
                track["stale"] += 1
                stop = track["stale"] >= params.patience
            bar.set_postfix(loss=f"{loss_value:.4f}", val_auprc=f"{metric:.3f}")
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                {
                    "model": scorer.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "track": track,
                    "fingerprint": run_id,
                },
            )
        if on_epoch_end is not None:
            on_epoch_end(epoch)
        if stop:
            break
    if track["best_state"] is not None:
        scorer.load_state_dict(track["best_state"])
    if params.linear_c is not None:
        scorer.linear = fit_linear_score(
            x,
            reconstruction.cpu().numpy(),
            _network_logits(scorer, data, reconstruction, np.arange(len(y)), device),
            y,
            params.linear_c,
        ).to(device)
    seconds = time.perf_counter() - started
    remove_checkpoint(checkpoint)
    stats = TrainingStats(
        epochs=int(track["epoch"]),
        steps=steps,
        rows_seen=rows_seen,
        seconds=seconds,
        resumed_from_epoch=start_epoch,
        final_loss=loss_value,
    )
    return scorer.cpu().eval(), stats


def pairwise_loss(positive: torch.Tensor, unlabeled: torch.Tensor) -> torch.Tensor:
    """Mean logistic loss of every (labeled anomaly, unlabeled row) pair ranked wrongly.

    Only the order of the logits matters, so unlabeled anomalies that already score high
    cost little as long as labeled ones score higher still.
    """
    return nn.functional.softplus(unlabeled[None, :] - positive[:, None]).mean()


@torch.no_grad()
def _likely_normal(
    encoder: TabularEncoder,
    data: torch.Tensor,
    positives: torch.Tensor,
    unlabeled: np.ndarray,
    share: float,
) -> torch.Tensor:
    """The unlabeled rows used as negatives: all but those nearest a labeled anomaly.

    Unlabeled rows hide anomalies, and the ones most like a labeled anomaly in the
    encoder's embedding are the likeliest: pushed down as negatives, they would teach
    the head to rank a known anomaly's unlabeled kin low. ``share`` of all rows, the
    nearest, are left out.
    """
    left_out = min(int(share * len(data)), len(unlabeled) - 1)
    if left_out <= 0:
        return torch.from_numpy(unlabeled)
    anchors = _embed(encoder, data[positives])
    rows = torch.from_numpy(unlabeled)
    # Written into one buffer: a list of small results between large freed distance
    # blocks fragmented the heap (2 GB peak on 430,000 rows instead of 0.1 GB).
    nearest = torch.empty(len(rows), device=data.device)
    for start in range(0, len(rows), _SCORE_BATCH):
        chunk = rows[start : start + _SCORE_BATCH]
        distances = torch.cdist(_embed(encoder, data[chunk]), anchors)
        torch.amin(distances, dim=1, out=nearest[start : start + len(chunk)])
    keep = torch.argsort(nearest)[left_out:]
    return rows[keep.cpu()]


def _embed(encoder: TabularEncoder, rows: torch.Tensor) -> torch.Tensor:
    with autocast(rows.device):
        return encoder.embed(rows).float()


def _validation_split(
    y: np.ndarray, params: FinetuneParams, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Hold out labeled rows for early stopping only when enough positives exist."""
    if int((y == 1).sum() * params.validation_fraction) < params.min_validation_positives:
        return np.arange(len(y)), None
    train, validation = stratified_split(y, params.validation_fraction, seed)
    return train, validation


@torch.no_grad()
def _reconstruction_scores(
    scorer: ScoringModel, data: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """The frozen backbone's score for every row, computed once: it never changes here."""
    with autocast(device):
        return torch.cat(
            [scorer.reconstruction_score(chunk).float() for chunk in data.split(_SCORE_BATCH)]
        )


def _validation_auprc(
    scorer: ScoringModel,
    data: torch.Tensor,
    reconstruction: torch.Tensor,
    rows: np.ndarray,
    y: np.ndarray,
    device: torch.device,
) -> float:
    logits = _network_logits(scorer, data, reconstruction, rows, device)
    return float(average_precision_score(y[rows], logits))


@torch.no_grad()
def _network_logits(
    scorer: ScoringModel,
    data: torch.Tensor,
    reconstruction: torch.Tensor,
    rows: np.ndarray,
    device: torch.device,
) -> np.ndarray:
    """The network's logits for ``rows`` (the linear half aside), in batches."""
    scorer.eval()
    out = np.empty(len(rows), dtype=np.float64)
    for start in range(0, len(rows), _SCORE_BATCH):
        index = torch.from_numpy(rows[start : start + _SCORE_BATCH]).to(device)
        with autocast(device):
            logits = scorer.logits(data[index], reconstruction[index]).float()
        out[start : start + len(index)] = logits.cpu().numpy()
    return out


def _state_digest(module: torch.nn.Module | None) -> str:
    if module is None:
        return "none"
    arrays = [t.detach().cpu().numpy() for t in module.state_dict().values()]
    return fingerprint(*arrays, settings={})
