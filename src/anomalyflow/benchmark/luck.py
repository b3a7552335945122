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

That luck of the split is measured by a run with twice the seeds
(:func:`best_peer_split_luck`): per set, the peer best on one half of the seeds is scored
on the other half, which it was not picked on, and the other way round.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from anomalyflow.benchmark.paired import paired
from anomalyflow.benchmark.peers import CHOSEN_PEERS, NOT_PEERS, best_peer_choices
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


def best_peer_split_luck(outcomes: list[Outcome]) -> dict[str, Any]:
    """The hindsight best peer of half the seeds, scored on the other half; and AnomalyFlow.

    Per set, the peer with the highest mean AUPRC over one half of the seeds (picked as the
    benchmark picks its best peer) is scored on the other half, and the other way round;
    the mean where it was picked less the mean on fresh splits is the luck of the split
    (which anomalies were labeled, which scored, each method's training draw). A run of
    2n seeds so measures the target of an n-seed run. AnomalyFlow's mean over every seed
    is paired, set by set, with the best peer's on fresh splits: the target with that luck
    taken out. Empty with an odd number of seeds, or one.
    """
    peers = [o for o in outcomes if o.method not in NOT_PEERS | CHOSEN_PEERS]
    seeds = sorted({o.seed for o in peers})
    if len(seeds) < 2 or len(seeds) % 2:
        return {}
    halves = (set(seeds[: len(seeds) // 2]), set(seeds[len(seeds) // 2 :]))
    picked, fresh = _picked_and_fresh(peers, *halves)
    picked_back, fresh_back = _picked_and_fresh(peers, *reversed(halves))
    where_picked, on_fresh = (picked + picked_back) / 2, (fresh + fresh_back) / 2
    summary: dict[str, Any] = {
        "seeds_per_half": len(seeds) // 2,
        "hindsight_best_peer": float(where_picked.mean()),
        "fresh_best_peer": float(on_fresh.mean()),
        "luck": float((where_picked - on_fresh).mean()),
        "luck_per_dataset": (where_picked - on_fresh).to_dict(),
    }
    ours = _reference_means(outcomes).reindex(on_fresh.index).dropna()
    if ours.empty:
        return summary
    behind = ours - on_fresh[ours.index]
    return (
        summary
        | {
            "anomalyflow": float(ours.mean()),
            "anomalyflow_less_fresh_best_peer": float(behind.mean()),
            "anomalyflow_less_fresh_per_dataset": behind.to_dict(),
        }
        | paired(ours, on_fresh[ours.index])
    )


def _picked_and_fresh(
    peers: list[Outcome], pick_on: set[int], score_on: set[int]
) -> tuple[pd.Series, pd.Series]:
    """Per set, the best peer on the seeds ``pick_on``: its mean there, and on ``score_on``."""
    chosen = best_peer_choices([o for o in peers if o.seed in pick_on], "auprc")

    def mean_of_chosen(seeds: set[int]) -> pd.Series:
        rows = [
            (o.dataset, o.auprc)
            for o in peers
            if o.seed in seeds and chosen.get(o.dataset) == o.method
        ]
        return pd.DataFrame(rows, columns=["dataset", "auprc"]).groupby("dataset").auprc.mean()

    return mean_of_chosen(pick_on), mean_of_chosen(score_on)


def _reference_means(outcomes: list[Outcome]) -> pd.Series:
    """AnomalyFlow's mean AUPRC over seeds, per set (empty when it did not run)."""
    rows = [(o.dataset, o.auprc) for o in outcomes if o.method == REFERENCE]
    frame = pd.DataFrame(rows, columns=["dataset", "auprc"])
    return frame.groupby("dataset").auprc.mean()
