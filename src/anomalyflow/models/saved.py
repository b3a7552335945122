"""The detector's networks as named tensors, and back: what ``weights.safetensors`` holds.

Each part's tensors are saved under a prefix naming it (``backbone.``, ``isolation.``,
``scorer.encoder.`` ...); a part that was never fitted has none, and is rebuilt as None.
Shapes the constructors need are read from the tensors themselves.
"""

from __future__ import annotations

import torch

from anomalyflow.models.backbone import Backbone
from anomalyflow.models.isolation import IsolationScore
from anomalyflow.models.linear import LinearScore
from anomalyflow.models.networks import ScoringHead, TabularEncoder
from anomalyflow.models.scorer import ScoringModel
from anomalyflow.models.trees import TreeScore
from anomalyflow.params import ModelParams


def named_tensors(parts: dict[str, torch.nn.Module | None]) -> dict[str, torch.Tensor]:
    """Every tensor of the fitted ``parts`` under its part's prefix, contiguous."""
    return {
        f"{prefix}.{k}": v.contiguous()
        for prefix, module in parts.items()
        if module is not None
        for k, v in module.state_dict().items()
    }


def networks_from_tensors(
    tensors: dict[str, torch.Tensor],
    n_features: int,
    model: ModelParams,
    pretrained: bool,
    fine_tuned: bool,
) -> tuple[Backbone | None, ScoringModel | None]:
    """The backbone and scoring model rebuilt from saved tensors, in eval mode."""
    backbone = None
    if pretrained:
        backbone = Backbone(n_features, model.hidden_dim, model.embedding_dim)
        backbone.load_state_dict(_section(tensors, "backbone."))
        backbone.eval()
    if not fine_tuned:
        return backbone, None
    encoder = TabularEncoder(n_features, model.hidden_dim, model.embedding_dim)
    encoder.load_state_dict(_section(tensors, "scorer.encoder."))
    head = ScoringHead(model.embedding_dim, model.head_hidden_dim)
    head.load_state_dict(_section(tensors, "scorer.head."))
    linear = None
    if linear_state := _section(tensors, "scorer.linear."):
        linear = LinearScore(n_features)
        linear.load_state_dict(linear_state)
    trees = None
    if tree_state := _section(tensors, "scorer.trees."):
        trees = TreeScore(*tree_state["borders"].shape)
        trees.load_state_dict(tree_state)
    return backbone, ScoringModel(backbone, encoder, head, linear, trees).eval()


def isolation_from_tensors(tensors: dict[str, torch.Tensor]) -> IsolationScore | None:
    """The isolation half rebuilt from saved tensors, or None when none was saved."""
    state = _section(tensors, "isolation.")
    if not state:
        return None
    trees = state["roots"].shape[0]
    isolation = IsolationScore(trees, state["features"].shape[0] // trees, len(state["levels"]))
    isolation.load_state_dict(state)
    return isolation


def _section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
