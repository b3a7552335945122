"""How much the hindsight best peer gains by the luck of the rows it is scored on.

The best peer (:func:`anomalyflow.benchmark.peers.with_best_peer`) is, per data set, the
peer with the highest AUPRC on the very test rows it is scored on. Where a few rows decide
a set's AUPRC, that maximum is above the best AUPRC any one peer would get on average over
other draws of such rows: the winner's curse. The resamples of each unit's test rows
(:mod:`anomalyflow.benchmark.resampling`) measure it, per set, as the mean over resamples
of the best peer's AUPRC less the best of the peers' mean AUPRCs over resamples. The best
peer's mean less that luck is what a method as good as the best peer on every set, and no
better, would be expected to score on these splits. The luck of the splits themselves
(which anomalies are labeled, which are scored) is not in it: resamples only redraw the
rows a split holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anomalyflow.benchmark.peers import CHOSEN_PEERS, NOT_PEERS
from anomalyflow.benchmark.protocol import REFERENCE, Outcome


def best_peer_luck(outcomes: list[Outcome]) -> dict[str, Any]:
    """The hindsight best peer's mean AUPRC, the part of it that is luck, and what is left.

    With AnomalyFlow's resamples too, also the share of resamples on which AnomalyFlow's
    mean is above the hindsight best peer's (the target as the benchmark states it), and
    above the mean of the peers that are best on average over resamples (the target with
    the luck of the pick taken out). Empty when any peer's outcome has no resamples (runs
    journaled before they were recorded).
    """
    peers = [o for o in outcomes if o.method not in NOT_PEERS | CHOSEN_PEERS]
    if not peers or any(not o.resampled_auprc for o in peers):
        return {}
    datasets = sorted({o.dataset for o in peers})
    observed = {d: _seed_means(peers, d, resampled=False) for d in datasets}
    resampled = {d: _seed_means(peers, d, resampled=True) for d in datasets}
    luck = {d: _luck(resampled[d]) for d in datasets}
    hindsight = float(np.mean([max(observed[d].values()) for d in datasets]))
    mean_luck = float(np.mean(list(luck.values())))
    summary: dict[str, Any] = {
        "resamples": len(peers[0].resampled_auprc),
        "hindsight_best_peer": hindsight,
        "luck": mean_luck,
        "best_peer_less_luck": hindsight - mean_luck,
        "luck_per_dataset": luck,
    }
    return summary | _reference_against(outcomes, resampled)


def _seed_means(peers: list[Outcome], dataset: str, resampled: bool) -> dict[str, Any]:
    """Each peer's AUPRC on ``dataset``, averaged over seeds: observed, or per resample."""
    by_method: dict[str, list[Any]] = {}
    for o in peers:
        if o.dataset == dataset:
            value = np.asarray(o.resampled_auprc) if resampled else o.auprc
            by_method.setdefault(o.method, []).append(value)
    return {method: np.mean(values, axis=0) for method, values in by_method.items()}


def _luck(resampled: dict[str, np.ndarray]) -> float:
    """Mean over resamples of the best peer's AUPRC, less the best mean over resamples."""
    table = np.stack(list(resampled.values()))  # (peers, resamples)
    return float(table.max(axis=0).mean() - table.mean(axis=1).max())


def _reference_against(
    outcomes: list[Outcome], resampled: dict[str, dict[str, np.ndarray]]
) -> dict[str, Any]:
    """How often AnomalyFlow's resampled mean over sets is above each form of the target
    (over the sets AnomalyFlow ran on)."""
    ours = [o for o in outcomes if o.method == REFERENCE and o.dataset in resampled]
    if not ours or any(not o.resampled_auprc for o in ours):
        return {}
    covered = sorted({o.dataset for o in ours})
    reference = np.mean([_seed_means(ours, d, resampled=True)[REFERENCE] for d in covered], axis=0)
    hindsight = np.mean(
        [np.stack(list(resampled[d].values())).max(axis=0) for d in covered], axis=0
    )
    best_on_average = np.mean(
        [max(resampled[d].values(), key=lambda values: float(values.mean())) for d in covered],
        axis=0,
    )
    return {
        "anomalyflow_above_hindsight_share": float((reference > hindsight).mean()),
        "anomalyflow_above_best_on_average_share": float((reference > best_on_average).mean()),
    }
