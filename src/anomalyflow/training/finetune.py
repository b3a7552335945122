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

Once the network is trained, a linear half (``training/linear.py``) and then a tree half
(``training/trees.py``) are fitted on the same labels, and the returned scorer adds the
standardised scores.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch import nn

from anomalyflow.data.splits import stratified_split
from anomalyflow.device import autocast, resolve_device, seed_everything
from anomalyflow.models.backbone import Backbone
from anomalyflow.models.linear import LinearScore
from anomalyflow.models.networks import ScoringHead, TabularEncoder
from anomalyflow.models.scorer import ScoringModel
from anomalyflow.params import FinetuneParams, ModelParams, RuntimeParams
from anomalyflow.training.checkpoint import fingerprint, remove_checkpoint
from anomalyflow.training.linear import fit_linear_score
from anomalyflow.training.loop import (
    Checkpointing,
    EarlyStopping,
    TrainingStats,
    batches,
    epoch_budget,
    resolve_batch_size,
    run_epochs,
)
from anomalyflow.training.trees import fit_tree_half

_SCORE_BATCH = 4096
_ENCODER_GROUP = 1  # index of the encoder's parameter group in _optimizer


@dataclass(frozen=True)
class _Rows:
    """The rows fine-tuning reads, on the training device; indices are rows of ``data``."""

    data: torch.Tensor  # (rows, features), scaled
    reconstruction: torch.Tensor  # (rows,): the frozen backbone's score, fixed here
    labels: np.ndarray  # (rows,): 1 for labeled anomalies, 0 for the rest
    positives: torch.Tensor  # the training split's labeled anomalies
    negatives: torch.Tensor  # the training split's likely normal unlabeled rows
    training_size: int  # rows in the training split, which size the batches
    validation: np.ndarray | None  # held out for early stopping, when labels allow


@dataclass(frozen=True)
class _Schedule:
    """How each epoch draws its batches, and from which epoch the encoder learns."""

    batch_size: int
    positives_per_batch: int
    frozen_epochs: int
    encoder_lr: float


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
    scorer = _starting_scorer(backbone, start_from, model, x.shape[1]).to(device)
    rows = _training_rows(scorer, x, y, params, runtime.seed, device)
    schedule = _schedule(params, rows.training_size, pretrained=scorer.backbone is not None)
    optimizer = _optimizer(scorer, params, schedule.encoder_lr)
    run_id = _run_id(x, y, model, params, runtime.seed, scorer.backbone, start_from)
    stats = run_epochs(
        scorer,
        optimizer,
        partial(_pairwise_losses, scorer, optimizer, rows, schedule),
        epochs=epoch_budget(
            len(rows.negatives), schedule.batch_size, params.max_epochs, params.max_steps
        ),
        seed=runtime.seed,
        label="fine-tune",
        progress=runtime.progress,
        checkpointing=Checkpointing(checkpoint, run_id, on_epoch_end),
        early_stopping=_early_stopping(scorer, rows, params, schedule),
    )
    halves_started = time.perf_counter()
    if params.linear_c is not None:
        scorer.linear = _linear_half(scorer, x, rows, params.linear_c)
    if params.tree_rounds is not None:
        trees = fit_tree_half(scorer, rows.data, rows.labels, params.tree_rounds, runtime.seed)
        scorer.trees = trees.to(device)
    # Fitting the other halves is part of fine-tuning, and of its time.
    stats = replace(stats, seconds=stats.seconds + time.perf_counter() - halves_started)
    remove_checkpoint(checkpoint)
    return scorer.cpu().eval(), stats


def _linear_half(scorer: ScoringModel, x: np.ndarray, rows: _Rows, c: float) -> LinearScore:
    """The linear half, fitted on the same labels beside the trained network's logits."""
    logits = _network_logits(scorer, rows, np.arange(len(rows.labels)))
    linear = fit_linear_score(x, rows.reconstruction.cpu().numpy(), logits, rows.labels, c)
    return linear.to(rows.data.device)


def _starting_scorer(
    backbone: Backbone | None,
    start_from: ScoringModel | None,
    model: ModelParams,
    n_features: int,
) -> ScoringModel:
    """A copy of ``start_from``, else a new head on a copy of ``backbone``'s encoder.

    The backbone, when there is one, is frozen: fine-tuning never changes the
    reconstruction score the head starts from.
    """
    if start_from is not None:
        scorer = copy.deepcopy(start_from)
        scorer.linear = scorer.trees = None  # refitted on the new labels after training
        if scorer.backbone is not None:
            scorer.backbone.requires_grad_(False).eval()
        return scorer
    if backbone is None:
        encoder = TabularEncoder(n_features, model.hidden_dim, model.embedding_dim)
    else:
        encoder = copy.deepcopy(backbone.encoder)
        backbone = copy.deepcopy(backbone).requires_grad_(False).eval()
    return ScoringModel(backbone, encoder, ScoringHead(model.embedding_dim, model.head_hidden_dim))


def _training_rows(
    scorer: ScoringModel,
    x: np.ndarray,
    y: np.ndarray,
    params: FinetuneParams,
    seed: int,
    device: torch.device,
) -> _Rows:
    """Move the rows to ``device``, hold out validation rows, pick the negatives."""
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    reconstruction = _reconstruction_scores(scorer, data)
    train_rows, validation_rows = _validation_split(y, params, seed)
    positives = torch.from_numpy(train_rows[y[train_rows] == 1])
    unlabeled = train_rows[y[train_rows] == 0]
    return _Rows(
        data=data,
        reconstruction=reconstruction,
        labels=y,
        positives=positives,
        negatives=_likely_normal(
            scorer.encoder, data, positives, unlabeled, params.near_anomaly_share
        ),
        training_size=len(train_rows),
        validation=validation_rows,
    )


def _schedule(params: FinetuneParams, training_rows: int, pretrained: bool) -> _Schedule:
    """Each batch adds ``batch_size // 4`` labeled anomalies, drawn with replacement.

    A pretrained encoder starts frozen, then learns at a fraction of the head's rate;
    one trained from scratch learns at the head's rate throughout.
    """
    batch_size = resolve_batch_size(params.batch_size, training_rows)
    head_lr = params.learning_rate
    return _Schedule(
        batch_size=batch_size,
        positives_per_batch=max(1, batch_size // 4),
        frozen_epochs=params.frozen_epochs if pretrained else 0,
        encoder_lr=head_lr * params.encoder_lr_ratio if pretrained else head_lr,
    )


def _optimizer(
    scorer: ScoringModel, params: FinetuneParams, encoder_lr: float
) -> torch.optim.Optimizer:
    """AdamW whose reconstruction weight learns ``skip_lr_ratio`` times faster than the head."""
    head_lr = params.learning_rate
    return torch.optim.AdamW(
        [
            {"params": scorer.head.mlp.parameters(), "lr": head_lr},
            {"params": scorer.encoder.parameters(), "lr": encoder_lr},  # _ENCODER_GROUP
            {"params": [scorer.head.skip_weight], "lr": head_lr * params.skip_lr_ratio},
        ],
        weight_decay=params.weight_decay,
    )


def _pairwise_losses(
    scorer: ScoringModel,
    optimizer: torch.optim.Optimizer,
    rows: _Rows,
    schedule: _Schedule,
    epoch: int,
    generator: torch.Generator,
) -> Iterator[tuple[torch.Tensor, int]]:
    """One epoch: every negative once, each batch with labeled anomalies drawn anew.

    The encoder learns only once its frozen epochs are over.
    """
    frozen = epoch < schedule.frozen_epochs
    scorer.encoder.requires_grad_(not frozen)
    optimizer.param_groups[_ENCODER_GROUP]["lr"] = 0.0 if frozen else schedule.encoder_lr
    shuffled = rows.negatives[torch.randperm(len(rows.negatives), generator=generator)]
    for negative_batch in batches(shuffled, schedule.batch_size):
        draw = torch.randint(
            len(rows.positives), (schedule.positives_per_batch,), generator=generator
        )
        positive_batch = rows.positives[draw]
        index = torch.cat([positive_batch, negative_batch]).to(rows.data.device)
        with autocast(rows.data.device):
            logits = scorer.logits(rows.data[index], rows.reconstruction[index]).float()
        loss = pairwise_loss(logits[: len(positive_batch)], logits[len(positive_batch) :])
        yield loss, len(index)


def _early_stopping(
    scorer: ScoringModel, rows: _Rows, params: FinetuneParams, schedule: _Schedule
) -> EarlyStopping | None:
    """Stop on validation AUPRC, when enough labeled anomalies were held out to measure it."""
    validation = rows.validation
    if validation is None:
        return None
    return EarlyStopping(
        metric=lambda: _validation_auprc(scorer, rows, validation),
        patience=params.patience,
        grace_epochs=schedule.frozen_epochs,
        name="val_auprc",
    )


def _run_id(
    x: np.ndarray,
    y: np.ndarray,
    model: ModelParams,
    params: FinetuneParams,
    seed: int,
    backbone: Backbone | None,
    start_from: ScoringModel | None,
) -> str:
    """The fingerprint a checkpoint must carry to be resumed by this run."""
    settings = {
        "model": asdict(model),
        "finetune": asdict(params),
        "seed": seed,
        "pretrained": backbone is not None,
        "backbone": _state_digest(backbone),
        "start_from": _state_digest(start_from),
    }
    return fingerprint(x, y, settings=settings)


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
    """Hold out labeled rows for early stopping only when enough positives exist.

    A split's AUPRC rests on its few labeled anomalies: with the 8 of the built-in data's
    batch it varied by +-0.14 between equally good models, several times the gap between
    epochs, so picking the best epoch on it picked noise and took a fifth of the labels
    from training. Below ``min_validation_positives`` every label trains instead.
    """
    if int((y == 1).sum() * params.validation_fraction) < params.min_validation_positives:
        return np.arange(len(y)), None
    train, validation = stratified_split(y, params.validation_fraction, seed)
    return train, validation


@torch.no_grad()
def _reconstruction_scores(scorer: ScoringModel, data: torch.Tensor) -> torch.Tensor:
    """The frozen backbone's score for every row, computed once: it never changes here."""
    with autocast(data.device):
        return torch.cat(
            [scorer.reconstruction_score(chunk).float() for chunk in data.split(_SCORE_BATCH)]
        )


def _validation_auprc(scorer: ScoringModel, rows: _Rows, validation: np.ndarray) -> float:
    logits = _network_logits(scorer, rows, validation)
    return float(average_precision_score(rows.labels[validation], logits))


@torch.no_grad()
def _network_logits(scorer: ScoringModel, rows: _Rows, which: np.ndarray) -> np.ndarray:
    """The network's logits for the rows ``which`` (the linear half aside), in batches."""
    scorer.eval()
    device = rows.data.device
    out = np.empty(len(which), dtype=np.float64)
    for start in range(0, len(which), _SCORE_BATCH):
        index = torch.from_numpy(which[start : start + _SCORE_BATCH]).to(device)
        with autocast(device):
            logits = scorer.logits(rows.data[index], rows.reconstruction[index]).float()
        out[start : start + len(index)] = logits.cpu().numpy()
    return out


def _state_digest(module: torch.nn.Module | None) -> str:
    if module is None:
        return "none"
    arrays = [t.detach().cpu().numpy() for t in module.state_dict().values()]
    return fingerprint(*arrays, settings={})
