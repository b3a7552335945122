"""Optional peers of the few-label protocol, and the per-data-set best peer.

The published runners-up for few-label tabular detection (ADGym, Jiang et al. 2023):
XGBOD (PyOD, on XGBoost) and the deep semi-supervised detectors DevNet and PReNet (deepod).
Their libraries are heavy or awkward to install, so they are optional: a peer whose library
does not import is skipped and named with the command that installs it, and the run goes on.

- XGBOD needs ``xgboost``: ``pip install 'anomalyflow[peers]'``.
- DevNet and PReNet need ``deepod`` 0.4.1, whose metadata pins ``torch<1.13.1`` (it runs on
  torch 2.x; the pin is its only obstacle), so it is installed without its dependencies:
  ``pip install --no-deps deepod==0.4.1``. An extra cannot say ``--no-deps``, hence the
  separate command.

Every peer gets the protocol's train rows and partial labels, scaled as AnomalyFlow scales
them, and the library's defaults otherwise (on the CPU, quiet, seeded).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from anomalyflow.benchmark.protocol import Fitted, Method, Outcome, methods
from anomalyflow.data.scaling import RobustScaler
from anomalyflow.detector import DetectorSettings

NOT_PEERS = frozenset({"anomalyflow", "anomalyflow_scratch"})
"""Methods that are AnomalyFlow or its ablation; every other method is a peer."""

BEST_PEER = "best_peer"
HELD_OUT_BEST_PEER = "best_peer_held_out"
CHOSEN_PEERS = frozenset({BEST_PEER, HELD_OUT_BEST_PEER})
"""Rows that repeat a peer chosen per data set; never a candidate for the choice."""


def xgbod(x_train: np.ndarray, y_partial: np.ndarray, seed: int) -> Fitted:
    """XGBOD: XGBoost on the features plus PyOD's unsupervised scores, on the partial labels.

    PyOD's default detector list (KNN, LOF, IsolationForest, HBOS, OCSVM at several sizes).
    """
    from pyod.models.xgbod import XGBOD

    scaler = RobustScaler().fit(x_train)
    model = XGBOD(random_state=seed, n_jobs=1).fit(scaler.transform(x_train), y_partial)
    return Fitted(lambda x: model.decision_function(scaler.transform(x)))


def devnet(x_train: np.ndarray, y_partial: np.ndarray, seed: int) -> Fitted:
    """DevNet (Pang et al. 2019), deepod's implementation and defaults (100 epochs)."""
    from deepod.models.tabular import DevNet

    scaler = RobustScaler().fit(x_train)
    model = DevNet(device="cpu", verbose=0, random_state=seed)
    model.fit(scaler.transform(x_train).astype(np.float32), y_partial)
    return Fitted(lambda x: _deepod_scores(model, scaler.transform(x)))


def prenet(x_train: np.ndarray, y_partial: np.ndarray, seed: int) -> Fitted:
    """PReNet (Pang et al. 2023), deepod's implementation and defaults (100 epochs).

    PReNet learns from pairs, a quarter of them two labeled anomalies drawn without
    replacement; with a single labeled anomaly that draw is impossible, so its row is given
    twice (the anomaly-anomaly pair is then the anomaly with itself).
    """
    from deepod.models.tabular import PReNet

    scaler = RobustScaler().fit(x_train)
    x, y = scaler.transform(x_train).astype(np.float32), y_partial
    if y.sum() == 1:
        labeled = np.flatnonzero(y == 1)
        x, y = np.concatenate([x, x[labeled]]), np.concatenate([y, y[labeled]])
    model = PReNet(device="cpu", verbose=0, random_state=seed)
    model.fit(x, y)
    return Fitted(lambda rows: _deepod_scores(model, scaler.transform(rows)))


def _deepod_scores(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.decision_function(x.astype(np.float32)), dtype=np.float64)


@dataclass(frozen=True)
class OptionalPeer:
    """A peer that runs only when its library imports.

    Attributes:
        module: the module whose import decides whether the peer runs.
        install: the command that makes it importable.
        method: the protocol method.
    """

    module: str
    install: str
    method: Method


OPTIONAL_PEERS: dict[str, OptionalPeer] = {
    "xgbod": OptionalPeer("xgboost", "pip install 'anomalyflow[peers]'", xgbod),
    "devnet": OptionalPeer("deepod", "pip install --no-deps deepod==0.4.1", devnet),
    "prenet": OptionalPeer("deepod", "pip install --no-deps deepod==0.4.1", prenet),
}


def importable(module: str) -> bool:
    """Whether ``module`` imports here (a broken install counts as missing)."""
    try:
        importlib.import_module(module)
    except Exception:  # an install broken in any way is a peer we cannot run
        return False
    return True


@dataclass(frozen=True)
class PeerChoice:
    """The optional peers that run, and those skipped with the command that installs them."""

    run: dict[str, Method]
    skipped: dict[str, str]


def optional_peers(available: Callable[[str], bool] = importable) -> PeerChoice:
    """Split :data:`OPTIONAL_PEERS` by whether their library is ``available``."""
    run: dict[str, Method] = {}
    skipped: dict[str, str] = {}
    for name, peer in OPTIONAL_PEERS.items():
        if available(peer.module):
            run[name] = peer.method
        else:
            skipped[name] = peer.install
    return PeerChoice(run, skipped)


def protocol_methods(
    settings: DetectorSettings,
    label_ratio: float,
    labels: int | None = None,
    available: Callable[[str], bool] = importable,
) -> PeerChoice:
    """Every method of the protocol at this budget, the optional peers included.

    The optional peers all learn from labels, so without labels none runs or is skipped.
    """
    base = methods(settings, label_ratio, labels)
    if (label_ratio if labels is None else labels) == 0:
        return PeerChoice(base, {})
    extra = optional_peers(available)
    return PeerChoice(base | extra.run, extra.skipped)


def short_of_labels(outcomes: list[Outcome], labels: int) -> dict[str, int]:
    """Data set and seed (``"name seed 0"``) whose train split had fewer than ``labels``
    anomalies, with the count labeled instead (all of them)."""
    return {f"{o.dataset} seed {o.seed}": o.labeled for o in outcomes if o.labeled < labels}


def with_best_peer(outcomes: list[Outcome], metric: str) -> list[Outcome]:
    """Add the per-data-set best peer as a method named :data:`BEST_PEER`.

    Per data set, the peer with the highest ``metric`` averaged over seeds is chosen (an
    oracle choice no user could make in advance: the strictest bar), and its outcomes are
    repeated under the name ``best_peer``, so the report pairs AnomalyFlow with it as with
    any method.
    """
    chosen = best_peer_choices(outcomes, metric)
    best = [replace(o, method=BEST_PEER) for o in outcomes if chosen.get(o.dataset) == o.method]
    return [*outcomes, *best]


def best_peer_choices(
    outcomes: list[Outcome], metric: str, skip_seed: int | None = None
) -> dict[str, str]:
    """The peer with the highest mean ``metric`` over seeds (but ``skip_seed``), per data set."""
    frame: dict[str, dict[str, list[float]]] = {}
    for o in outcomes:
        if o.method not in NOT_PEERS | CHOSEN_PEERS and o.seed != skip_seed:
            frame.setdefault(o.dataset, {}).setdefault(o.method, []).append(getattr(o, metric))
    return {
        dataset: max(scores, key=lambda m: float(np.mean(scores[m])))
        for dataset, scores in frame.items()
    }


def with_held_out_best_peer(outcomes: list[Outcome], metric: str) -> list[Outcome]:
    """Add the best peer as a user could choose it, named :data:`HELD_OUT_BEST_PEER`.

    On each data set and seed it is the peer that scored best on that set's other seeds:
    chosen on past splits, then scored on a split it was not chosen on. The oracle
    :data:`BEST_PEER` picks with hindsight of the very splits it is scored on, so on small
    test sets part of its lead over any one method is the luck of the draw; the gap between
    the two measures that luck. Needs two seeds or more.
    """
    seeds = sorted({o.seed for o in outcomes})
    if len(seeds) < 2:
        return outcomes
    picked = {seed: best_peer_choices(outcomes, metric, skip_seed=seed) for seed in seeds}
    held_out = [
        replace(o, method=HELD_OUT_BEST_PEER)
        for o in outcomes
        if o.method not in CHOSEN_PEERS and picked[o.seed].get(o.dataset) == o.method
    ]
    return [*outcomes, *held_out]
