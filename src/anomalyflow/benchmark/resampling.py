"""Resampled test rows: how much of a set's AUPRC is the luck of which rows were drawn.

A set whose test rows hold three anomalies has an AUPRC that three rows decide, so the
best of nine methods picked with hindsight of those rows is partly the luck of the draw.
Each unit therefore also scores every method on the same resamples of its test rows
(stratified: each resample keeps the test rows' count of anomalies and of normal rows),
and :mod:`anomalyflow.benchmark.luck` reads from them how much the hindsight pick gains
by the luck of the scored rows. A resample cannot draw anomalies the split did not hold,
so this is the luck of the rows given the split, not of the split itself (a lower bound:
docs/benchmarks.md measures the split's on fresh seeds).

A resample is a row of counts (how often each test row was drawn), so AUPRC is computed
as scikit-learn's average precision with those counts as sample weights, for every
resample at once.
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 200
"""Resamples of each unit's test rows (about 0.05 s per method and unit of 3,000 rows)."""

_CHUNK_CELLS = 4_000_000
"""Resample-by-row cells weighed at once: bounds the memory of a large test split."""


def stratified_counts(y_test: np.ndarray, seed: int, resamples: int = RESAMPLES) -> np.ndarray:
    """``(resamples, rows)`` draw counts: each resample redraws, with replacement, as many
    anomalies from the test anomalies and as many normal rows from the normal ones."""
    rng = np.random.default_rng([seed, resamples])
    counts = np.zeros((resamples, len(y_test)), dtype=np.int32)
    for label in (0, 1):
        rows = np.flatnonzero(y_test == label)
        if len(rows):
            counts[:, rows] = rng.multinomial(
                len(rows), np.full(len(rows), 1 / len(rows)), resamples
            )
    return counts


def resampled_auprc(y_test: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Average precision of ``scores`` on each resample (a row of ``counts``).

    Equal to ``average_precision_score(y_test, scores, sample_weight=counts[i])`` for each
    ``i``: rows with the same score form one threshold, as scikit-learn counts them.
    """
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    positive = y_test[order] == 1
    chunk = max(1, _CHUNK_CELLS // max(1, len(y_test)))
    return np.concatenate(
        [
            _weighted_precision(counts[i : i + chunk][:, order], positive, starts)
            for i in range(0, len(counts), chunk)
        ]
    )


def _weighted_precision(
    weights: np.ndarray, positive: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """Average precision per row of ``weights`` (columns ranked, ties grouped at ``starts``)."""
    hits = np.add.reduceat(weights * positive, starts, axis=1).astype(float)
    drawn = np.add.reduceat(weights, starts, axis=1).astype(float)
    true_positives = np.cumsum(hits, axis=1)
    flagged = np.cumsum(drawn, axis=1)
    precision = np.divide(true_positives, flagged, out=np.zeros_like(flagged), where=flagged > 0)
    total = true_positives[:, -1:]
    recall_steps = np.divide(hits, total, out=np.zeros_like(hits), where=total > 0)
    result: np.ndarray = (recall_steps * precision).sum(axis=1)
    return result
