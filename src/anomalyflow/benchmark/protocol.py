"""The few-label protocol of ``../shared/datasets/README.md``, with every peer side by side.

Per data set and seed: cap the rows (stratified, as ADBench does), split 70/30
stratified, keep label 1 on a share ``label_ratio`` of the train anomalies (at least one
when the ratio is above zero), and give every method the same train rows and partial
labels. Test labels are only used for scoring the scores.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from anomalyflow.data.loaders import read_npz
from anomalyflow.data.scaling import RobustScaler
from anomalyflow.data.splits import stratified_split, subsample_stratified
from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.training.linear import logistic_regression as linear_classifier

Method = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]
"""Takes train X, partial train labels, test X and a seed; returns test scores."""


@dataclass(frozen=True)
class Split:
    """One protocol split: train rows, their partial labels, test rows and test truth."""

    x_train: np.ndarray
    y_partial: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class Outcome:
    """One method on one data set and seed."""

    dataset: str
    seed: int
    method: str
    auroc: float
    auprc: float
    seconds: float


def make_split(
    x: np.ndarray,
    y: np.ndarray,
    label_ratio: float,
    seed: int,
    row_cap: int,
    test_size: float,
) -> Split:
    """Apply the protocol to a full data set ``x`` ``(rows, features)``, truth ``y``."""
    keep = subsample_stratified(y, row_cap, seed)
    x, y = x[keep], y[keep]
    train, test = stratified_split(y, test_size, seed)
    y_train = y[train]
    anomalies = np.flatnonzero(y_train == 1)
    y_partial = np.zeros_like(y_train)
    if label_ratio > 0 and len(anomalies) > 0:
        count = max(1, round(label_ratio * len(anomalies)))
        chosen = np.random.default_rng(seed).choice(anomalies, size=count, replace=False)
        y_partial[chosen] = 1
    return Split(x[train], y_partial, x[test], y[test])


def anomalyflow_method(settings: DetectorSettings, pretrained: bool) -> Method:
    """AnomalyFlow (or its from-scratch ablation) as a protocol method."""

    def run(
        x_train: np.ndarray, y_partial: np.ndarray, x_test: np.ndarray, seed: int
    ) -> np.ndarray:
        from dataclasses import replace

        seeded = replace(settings, runtime=replace(settings.runtime, seed=seed, progress=False))
        detector = AnomalyDetector(seeded, pretrained=pretrained)
        return detector.fit(x_train, y_partial).decision_function(x_test)

    return run


def isolation_forest(
    x_train: np.ndarray, y_partial: np.ndarray, x_test: np.ndarray, seed: int
) -> np.ndarray:
    """IsolationForest, unsupervised (ignores the labels)."""
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(random_state=seed, n_jobs=1).fit(x_train)
    return -model.score_samples(x_test)  # type: ignore[no-any-return]


def ecod(x_train: np.ndarray, y_partial: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    """ECOD from PyOD, unsupervised."""
    from pyod.models.ecod import ECOD

    return ECOD().fit(x_train).decision_function(x_test)  # type: ignore[no-any-return]


def hist_gradient_boosting(
    x_train: np.ndarray, y_partial: np.ndarray, x_test: np.ndarray, seed: int
) -> np.ndarray:
    """HistGradientBoostingClassifier on the partial labels."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(random_state=seed).fit(x_train, y_partial)
    return model.predict_proba(x_test)[:, 1]  # type: ignore[no-any-return]


def catboost(
    x_train: np.ndarray, y_partial: np.ndarray, x_test: np.ndarray, seed: int
) -> np.ndarray:
    """CatBoost on the partial labels, library defaults, two threads."""
    from catboost import CatBoostClassifier

    model = CatBoostClassifier(
        random_seed=seed, verbose=False, thread_count=2, allow_writing_files=False
    )
    model.fit(x_train, y_partial)
    return model.predict_proba(x_test)[:, 1]  # type: ignore[no-any-return]


def logistic_regression(
    x_train: np.ndarray, y_partial: np.ndarray, x_test: np.ndarray, seed: int
) -> np.ndarray:
    """L2 logistic regression (C 0.01, class-balanced) on the partial labels.

    Features scaled as AnomalyFlow scales them: this is AnomalyFlow's linear half alone,
    without the label-free score or the network, so it shows what the network adds.
    """
    scaler = RobustScaler().fit(x_train)
    model = linear_classifier(0.01).fit(scaler.transform(x_train), y_partial)
    return model.decision_function(scaler.transform(x_test))  # type: ignore[no-any-return]


def methods(settings: DetectorSettings, label_ratio: float) -> dict[str, Method]:
    """Every method run at ``label_ratio``; label-free ones only at ratio 0."""
    unsupervised: dict[str, Method] = {
        "anomalyflow": anomalyflow_method(settings, pretrained=True),
        "isolation_forest": isolation_forest,
        "ecod": ecod,
    }
    if label_ratio == 0:
        return unsupervised
    return unsupervised | {
        "anomalyflow_scratch": anomalyflow_method(settings, pretrained=False),
        "hist_gradient_boosting": hist_gradient_boosting,
        "catboost": catboost,
        "logistic_regression": logistic_regression,
    }


def run_protocol(
    paths: list[Path],
    settings: DetectorSettings,
    label_ratio: float,
    seeds: int,
    row_cap: int,
    test_size: float,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Every method on every data set and seed, on identical splits."""
    outcomes = []
    for path in paths:
        table = read_npz(path, require_labels=True)
        assert table.y is not None
        for seed in range(seeds):
            split = make_split(table.x, table.y, label_ratio, seed, row_cap, test_size)
            for name, method in methods(settings, label_ratio).items():
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scores = method(split.x_train, split.y_partial, split.x_test, seed)
                seconds = time.perf_counter() - started
                outcome = Outcome(
                    dataset=path.stem,
                    seed=seed,
                    method=name,
                    auroc=float(roc_auc_score(split.y_test, scores)),
                    auprc=float(average_precision_score(split.y_test, scores)),
                    seconds=seconds,
                )
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
    return outcomes
