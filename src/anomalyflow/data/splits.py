"""Train / test splits: stratified for i.i.d. data, by time for transaction streams."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def stratified_split(
    labels: np.ndarray, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)`` keeping the label share equal in both parts."""
    rows = np.arange(len(labels))
    stratify = labels if np.bincount(labels.astype(np.int64)).min() >= 2 else None
    train, test = train_test_split(rows, test_size=test_size, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(test)


def time_split(timestamps: np.ndarray, test_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)`` with the latest ``test_size`` share as test.

    Evaluating on later rows than the model saw is what production looks like; a random
    split would leak the future into training.
    """
    order = np.argsort(timestamps, kind="stable")
    cut = len(order) - round(len(order) * test_size)
    return np.sort(order[:cut]), np.sort(order[cut:])


def subsample_stratified(labels: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """At most ``max_rows`` row indices with the label share kept (ADBench's row cap)."""
    if len(labels) <= max_rows:
        return np.arange(len(labels))
    keep, _ = train_test_split(
        np.arange(len(labels)), train_size=max_rows, random_state=seed, stratify=labels
    )
    return np.sort(keep)
