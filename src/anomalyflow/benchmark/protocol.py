"""The few-label protocol of ``../shared/datasets/README.md``, with every peer side by side.

Per data set and seed: cap the rows (stratified, as ADBench does), split 70/30
stratified, keep label 1 on a share ``label_ratio`` of the train anomalies (at least one
when the ratio is above zero), and give every method the same train rows and partial
labels. Test labels are only used for scoring the scores. ADGym's protocol counts labels
instead (``labels``): N train anomalies keep their label, or all of them when fewer.

Each method is fitted and then scores the test rows; the two are timed apart, so the fit
seconds of AnomalyFlow and of each peer (CatBoost among them) come from the same run on the
same rows. AnomalyFlow's fit is also timed per phase (pretraining, fine-tuning, threshold).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from anomalyflow.benchmark.resampling import resampled_auprc, stratified_counts
from anomalyflow.data.loaders import read_npz
from anomalyflow.data.scaling import RobustScaler
from anomalyflow.data.schema import InputError
from anomalyflow.data.splits import stratified_split, subsample_stratified
from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.training.linear import logistic_regression as linear_classifier

REFERENCE = "anomalyflow"
"""The method every report compares each other method with."""

Scorer = Callable[[np.ndarray], np.ndarray]
"""Scores rows ``(rows, features)``: one score per row, higher = more anomalous."""


@dataclass(frozen=True)
class Fitted:
    """A method fitted on a split's train rows.

    Attributes:
        score: the fitted method's scorer.
        phases: seconds of each phase of the fit, where the method reports them
            (AnomalyFlow: ``pretrain``, ``finetune``, ``threshold``); empty for peers.
    """

    score: Scorer
    phases: dict[str, float] = field(default_factory=dict)


Method = Callable[[np.ndarray, np.ndarray, int], Fitted]
"""Takes train X, partial train labels and a seed; returns the fitted scorer."""


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
    seconds: float  # fit and scoring of the test rows
    fit_seconds: float
    score_seconds: float
    train_rows: int = 0
    phases: dict[str, float] = field(default_factory=dict)  # AnomalyFlow's fit, by phase
    labeled: int = 0  # train anomalies that kept their label
    test_anomalies: int = 0  # the rows that decide the AUPRC (0: not recorded)
    resampled_auprc: tuple[float, ...] = ()  # on the unit's resampled test rows (resampling)

    def __post_init__(self) -> None:
        # a journal reads the resamples back as a list; an outcome holds them as recorded
        object.__setattr__(self, "resampled_auprc", tuple(self.resampled_auprc))


def make_split(
    x: np.ndarray,
    y: np.ndarray,
    label_ratio: float,
    seed: int,
    row_cap: int,
    test_size: float,
    labels: int | None = None,
) -> Split:
    """Apply the protocol to a full data set ``x`` ``(rows, features)``, truth ``y``.

    ``labels``, when given, replaces ``label_ratio``: that many train anomalies keep their
    label (all of them when the split has fewer). The train/test split depends on the seed
    only, so both budgets see the same rows.
    """
    keep = subsample_stratified(y, row_cap, seed)
    x, y = x[keep], y[keep]
    train, test = stratified_split(y, test_size, seed)
    y_train = y[train]
    anomalies = np.flatnonzero(y_train == 1)
    y_partial = np.zeros_like(y_train)
    if labels is not None:
        count = min(labels, len(anomalies))
    else:
        count = max(1, round(label_ratio * len(anomalies))) if label_ratio > 0 else 0
    if count > 0:
        chosen = np.random.default_rng(seed).choice(anomalies, size=count, replace=False)
        y_partial[chosen] = 1
    return Split(x[train], y_partial, x[test], y[test])


def anomalyflow_method(settings: DetectorSettings, pretrained: bool) -> Method:
    """AnomalyFlow (or its from-scratch ablation) as a protocol method.

    Runs the steps ``AnomalyDetector.fit`` runs on an array with partial labels, one by
    one, so each is timed: pretraining (scaler and backbone; the scaler alone for the
    ablation), fine-tuning (only with labels) and the threshold (scoring the train rows).
    """

    def run(x_train: np.ndarray, y_partial: np.ndarray, seed: int) -> Fitted:
        seeded = replace(settings, runtime=replace(settings.runtime, seed=seed, progress=False))
        detector = AnomalyDetector(seeded, pretrained=pretrained)
        phases: dict[str, float] = {}
        with _timed(phases, "pretrain"):
            detector.pretrain(x_train)
        if y_partial.any():
            with _timed(phases, "finetune"):
                detector.finetune(x_train, y_partial)
        with _timed(phases, "threshold"):
            detector.refit_threshold(x_train, y_partial)
        return Fitted(detector.decision_function, phases)

    return run


@contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    """Add the seconds the block takes to ``phases[name]``."""
    started = time.perf_counter()
    yield
    phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


def isolation_forest(x_train: np.ndarray, y_partial: np.ndarray, seed: int) -> Fitted:
    """IsolationForest, unsupervised (ignores the labels)."""
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(random_state=seed, n_jobs=1).fit(x_train)
    return Fitted(lambda x: -model.score_samples(x))


def ecod(x_train: np.ndarray, y_partial: np.ndarray, seed: int) -> Fitted:
    """ECOD from PyOD, unsupervised."""
    from pyod.models.ecod import ECOD

    return Fitted(ECOD().fit(x_train).decision_function)


def hist_gradient_boosting(x_train: np.ndarray, y_partial: np.ndarray, seed: int) -> Fitted:
    """HistGradientBoostingClassifier on the partial labels."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(random_state=seed).fit(x_train, y_partial)
    return Fitted(lambda x: model.predict_proba(x)[:, 1])


def catboost(x_train: np.ndarray, y_partial: np.ndarray, seed: int) -> Fitted:
    """CatBoost on the partial labels, library defaults, two threads."""
    from catboost import CatBoostClassifier

    model = CatBoostClassifier(
        random_seed=seed, verbose=False, thread_count=2, allow_writing_files=False
    )
    model.fit(x_train, y_partial)
    return Fitted(lambda x: model.predict_proba(x)[:, 1])


def logistic_regression(x_train: np.ndarray, y_partial: np.ndarray, seed: int) -> Fitted:
    """L2 logistic regression (C 0.01, class-balanced) on the partial labels.

    Features scaled as AnomalyFlow scales them: this is AnomalyFlow's linear half alone,
    without the label-free score or the network, so it shows what the network adds.
    """
    scaler = RobustScaler().fit(x_train)
    model = linear_classifier(0.01).fit(scaler.transform(x_train), y_partial)
    return Fitted(lambda x: model.decision_function(scaler.transform(x)))


def methods(
    settings: DetectorSettings, label_ratio: float, labels: int | None = None
) -> dict[str, Method]:
    """Every method run at ``label_ratio`` (or ``labels``); label-free ones only without."""
    unsupervised: dict[str, Method] = {
        REFERENCE: anomalyflow_method(settings, pretrained=True),
        "isolation_forest": isolation_forest,
        "ecod": ecod,
    }
    if (label_ratio if labels is None else labels) == 0:
        return unsupervised
    return unsupervised | {
        "anomalyflow_scratch": anomalyflow_method(settings, pretrained=False),
        "hist_gradient_boosting": hist_gradient_boosting,
        "catboost": catboost,
        "logistic_regression": logistic_regression,
    }


@dataclass(frozen=True)
class Budget:
    """How a data set becomes a split: the labels kept, the row cap and the test share.

    Attributes:
        label_ratio: share of train anomalies that keep their label.
        labels: that many train anomalies keep their label instead (ADGym's protocol).
        row_cap: rows kept per data set (stratified subsample).
        test_size: share of the kept rows held out for scoring.
    """

    label_ratio: float
    labels: int | None
    row_cap: int
    test_size: float


def refuse_unusable_data(paths: list[Path]) -> None:
    """Check every data file as its units will use it, before the first unit starts.

    A data set is known by its file's stem (journal, report): a second file of that stem
    would silently take the first one's outcomes. A file refused only when its turn came
    would stop a run of hours at its end, with a journal that the corrected file (other
    bytes) can no longer resume.

    Raises:
        InputError: the first file the protocol cannot read or tell apart (names it).
    """
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen:
            raise InputError(
                path, None, f"data set {path.stem!r} is named twice ({seen[path.stem]})"
            )
        seen[path.stem] = path
        read_npz(path, require_labels=True)


def run_unit(path: Path, seed: int, chosen: dict[str, Method], budget: Budget) -> list[Outcome]:
    """One unit of the protocol: every ``chosen`` method on one data set's split for ``seed``.

    Units share nothing, so a run can spread them over processes and keep those finished.
    """
    _import_peers()
    table = read_npz(path, require_labels=True)
    assert table.y is not None
    split = make_split(
        table.x, table.y, budget.label_ratio, seed, budget.row_cap, budget.test_size, budget.labels
    )
    counts = stratified_counts(split.y_test, seed)
    return [
        _run_one(path.stem, seed, name, method, split, counts) for name, method in chosen.items()
    ]


def _run_one(
    dataset: str, seed: int, name: str, method: Method, split: Split, counts: np.ndarray
) -> Outcome:
    """Fit ``method`` on the split's train rows and score its test rows, timing each; then
    its AUPRC on each resample of the test rows (``counts``, the same for every method)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        fitted = method(split.x_train, split.y_partial, seed)
        fitted_at = time.perf_counter()
        scores = fitted.score(split.x_test)
        scored_at = time.perf_counter()
    return Outcome(
        dataset=dataset,
        seed=seed,
        method=name,
        auroc=float(roc_auc_score(split.y_test, scores)),
        auprc=float(average_precision_score(split.y_test, scores)),
        seconds=scored_at - started,
        fit_seconds=fitted_at - started,
        score_seconds=scored_at - fitted_at,
        train_rows=len(split.x_train),
        phases=fitted.phases,
        labeled=int(split.y_partial.sum()),
        test_anomalies=int(split.y_test.sum()),
        resampled_auprc=tuple(resampled_auprc(split.y_test, scores, counts).tolist()),
    )


def _import_peers() -> None:
    """Import the peers' libraries once, so no method's first fit pays for an import."""
    import catboost  # noqa: F401
    import pyod.models.ecod  # noqa: F401
    import sklearn.ensemble  # noqa: F401
