"""Seeded generator of realistic card transactions: AnomalyFlow's default, offline data set.

Three splits in time order mirror the product's story: a large unlabeled ``history`` to
pretrain on, a ``recent`` window where only some frauds were confirmed (few labels), and a
later, fully labeled ``holdout`` for evaluation. Frauds follow typologies seen in card
payments (card testing, account takeover, geographic anomaly) and overlap partly with
normal spending, so a model has to combine features rather than threshold one. The
:class:`~anomalyflow.params.DriftKnobs` shift ``recent`` and ``holdout`` only; ``history``
is the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from anomalyflow.atomic import atomic_path
from anomalyflow.params import DriftKnobs, SyntheticParams

FEATURES: tuple[str, ...] = (
    "amount",  # USD
    "hour",  # time of day in [0, 24)
    "merchant_category",  # code into MERCHANT_CATEGORIES
    "distance_from_home_km",  # merchant (card present) or IP location (online) to home
    "txn_count_1h",  # card's transactions in the last hour, this one included
    "txn_count_24h",  # card's transactions in the last 24 hours, this one included
    "amount_to_avg_ratio",  # amount / card's trailing average amount
    "minutes_since_last_txn",
    "card_present",  # 0/1; 0 for online and for phone / mail orders
    "online",  # 0/1; online implies card not present
    "device_change",  # 0/1; new device or browser fingerprint, online only
    "foreign_merchant",  # 0/1; merchant country differs from the card's
)
LABEL = "is_fraud"
ID = "transaction_id"
TIMESTAMP = "timestamp"

MERCHANT_CATEGORIES: tuple[str, ...] = (
    "grocery",
    "fuel",
    "restaurants",
    "travel",
    "electronics",
    "digital_goods",
    "apparel",
    "health",
    "entertainment",
    "online_marketplace",
)
(GROCERY, FUEL, RESTAURANTS, TRAVEL, ELECTRONICS, DIGITAL, APPAREL, HEALTH, ENTERTAINMENT,
 MARKETPLACE) = range(len(MERCHANT_CATEGORIES))  # fmt: skip

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Per category: share of legitimate spending, chance a purchase is online, and the
# lognormal amount (median USD, log-sigma).
_CATEGORY_MIX = np.array([0.22, 0.11, 0.16, 0.04, 0.05, 0.07, 0.09, 0.07, 0.08, 0.11])
_ONLINE_PROB = np.array([0.04, 0.0, 0.08, 0.55, 0.45, 0.97, 0.35, 0.15, 0.40, 0.95])
_AMOUNT_MEDIAN = np.array([45.0, 40.0, 28.0, 320.0, 170.0, 12.0, 60.0, 30.0, 25.0, 38.0])
_AMOUNT_SIGMA = np.array([0.6, 0.35, 0.6, 0.9, 0.9, 0.8, 0.7, 0.7, 0.7, 0.9])

_START = np.datetime64("2024-01-01T00:00:00", "s")
SPLIT_DAYS = {"history": 90, "recent": 28, "holdout": 14}  # consecutive windows

# Share of each typology among frauds. new_fraud_pattern gives collusion its share by scaling
# these down, so the overall fraud rate stays at fraud_rate.
_FRAUD_MIX = {"card_testing": 0.40, "account_takeover": 0.35, "geo_anomaly": 0.25}
_NEW_PATTERN_SHARE = 0.25
_COLLUSION_CATEGORY = APPAREL  # refunds pushed through one complicit store
_INTEGER_FEATURES = frozenset(
    {"merchant_category", "txn_count_1h", "txn_count_24h", "card_present", "online",
     "device_change", "foreign_merchant"}
)  # fmt: skip


@dataclass(frozen=True)
class SyntheticDataset:
    """The three splits, in time order: history < recent < holdout.

    Attributes:
        history: Unlabeled rows for pretraining: ``ID``, ``TIMESTAMP`` and ``FEATURES``.
        recent: Same columns plus ``LABEL``; 1 only for the ``label_coverage`` share of
            true frauds that were confirmed, 0 for legit and unconfirmed rows alike.
        holdout: Later rows with the same columns and the true ``LABEL`` for every row.
    """

    history: pd.DataFrame
    recent: pd.DataFrame
    holdout: pd.DataFrame


@dataclass(frozen=True)
class Cards:
    """Per-card habits shared by all splits, so velocity and ratios mean the same over time."""

    weight: FloatArray  # chance a transaction belongs to the card
    spend_scale: FloatArray  # multiplies every amount of the card
    daily_rate: FloatArray  # typical transactions per day
    online_factor: FloatArray  # multiplies the category's online probability
    avg_amount: FloatArray  # trailing average amount, before inflation


def generate(params: SyntheticParams) -> SyntheticDataset:
    """Draw history, recent and holdout transactions, fully determined by ``params.seed``.

    Every split draws from its own child of the seed, so changing a drift knob or the size
    of a later split leaves ``history`` identical.
    """
    seqs = np.random.SeedSequence(params.seed).spawn(5)
    card_seq, history_seq, recent_seq, holdout_seq, label_seq = seqs
    cards = draw_cards(np.random.default_rng(card_seq), max(50, params.history_rows // 20))
    reference = DriftKnobs()
    day = 0
    frames: dict[str, pd.DataFrame] = {}
    truths: dict[str, IntArray] = {}
    first_id = 0
    for name, seq, rows, drift in (
        ("history", history_seq, params.history_rows, reference),
        ("recent", recent_seq, params.recent_rows, params.drift),
        ("holdout", holdout_seq, params.holdout_rows, params.drift),
    ):
        rng = np.random.default_rng(seq)
        frame, truth = draw_split(rng, rows, cards, params.fraud_rate, drift, day, SPLIT_DAYS[name])
        frame.insert(0, ID, np.arange(first_id, first_id + rows, dtype=np.int64))
        frames[name], truths[name] = frame, truth
        first_id += rows
        day += SPLIT_DAYS[name]

    labels = truths["recent"].copy()
    frauds = np.flatnonzero(labels)
    unconfirmed = np.random.default_rng(label_seq).permutation(frauds)[
        round(params.label_coverage * frauds.size) :
    ]
    labels[unconfirmed] = 0
    frames["recent"][LABEL] = labels
    frames["holdout"][LABEL] = truths["holdout"]
    return SyntheticDataset(frames["history"], frames["recent"], frames["holdout"])


def write_parquet(dataset: SyntheticDataset, targets: Mapping[str, Path]) -> dict[str, Path]:
    """Write each split (``history``, ``recent``, ``holdout``) to its file in ``targets``.

    Each file is written to a temporary name and renamed, so a crash never leaves a
    half-written split that a later stage would read as complete.

    Returns:
        The split name mapped to its file path.
    """
    frames = {"history": dataset.history, "recent": dataset.recent, "holdout": dataset.holdout}
    paths: dict[str, Path] = {}
    for name, frame in frames.items():
        target = Path(targets[name])
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as partial:
            frame.to_parquet(partial, index=False)
        paths[name] = target
    return paths


def draw_cards(rng: np.random.Generator, count: int) -> Cards:
    spend_scale = rng.lognormal(0.0, 0.45, count)
    daily_rate = rng.lognormal(np.log(2.5), 0.6, count)
    typical = float(_CATEGORY_MIX @ (_AMOUNT_MEDIAN * np.exp(_AMOUNT_SIGMA**2 / 2)))
    # The stored average is an estimate from past purchases, hence its own noise.
    avg_amount = spend_scale * typical * rng.lognormal(0.0, 0.15, count)
    return Cards(
        weight=daily_rate / daily_rate.sum(),
        spend_scale=spend_scale,
        daily_rate=daily_rate,
        online_factor=rng.lognormal(0.0, 0.3, count),
        avg_amount=avg_amount,
    )


def draw_split(
    rng: np.random.Generator,
    rows: int,
    cards: Cards,
    fraud_rate: float,
    drift: DriftKnobs,
    first_day: int,
    days: int,
) -> tuple[pd.DataFrame, IntArray]:
    """One time window: legitimate rows, then frauds written over a random subset.

    Returns:
        The frame (``TIMESTAMP`` then ``FEATURES``, sorted by time) and the true label of
        each of its rows.
    """
    card = rng.choice(cards.weight.size, size=rows, p=cards.weight)
    columns = _legit(rng, card, cards, drift)

    frauds = rng.choice(rows, size=round(fraud_rate * rows), replace=False)
    mix = dict(_FRAUD_MIX)
    if drift.new_fraud_pattern:
        mix = {k: v * (1 - _NEW_PATTERN_SHARE) for k, v in mix.items()}
        mix["collusion"] = _NEW_PATTERN_SHARE
    kinds = rng.choice(len(mix), size=frauds.size, p=np.array(list(mix.values())))
    for index, kind in enumerate(mix):
        rows_of_kind = frauds[kinds == index]
        _FRAUD_WRITERS[kind](rng, rows_of_kind, card[rows_of_kind], cards, columns)
    _derive(columns, card, cards, drift)

    truth = np.zeros(rows, dtype=np.int64)
    truth[frauds] = 1
    day = rng.integers(first_day, first_day + days, size=rows)
    # Floor, not round: a row at 23:59:59.9 must not spill into the next window.
    seconds = np.floor((day * 24.0 + columns["hour"]) * 3600.0).astype(np.int64)
    timestamp = _START + seconds.astype("timedelta64[s]")
    order = np.argsort(seconds, kind="stable")
    frame = pd.DataFrame({TIMESTAMP: timestamp.astype("datetime64[ns]")[order]})
    for name in FEATURES:
        values = columns[name][order]
        frame[name] = values.astype(np.int64) if name in _INTEGER_FEATURES else values
    return frame, truth[order]


def _legit(
    rng: np.random.Generator, card: IntArray, cards: Cards, drift: DriftKnobs
) -> dict[str, FloatArray]:
    """Everyday spending; the mix shift moves categories and channels toward online."""
    rows = card.size
    shift = drift.merchant_mix_shift
    online_leaning = _CATEGORY_MIX * _ONLINE_PROB
    mix = (1 - shift) * _CATEGORY_MIX + shift * online_leaning / online_leaning.sum()
    category = rng.choice(len(MERCHANT_CATEGORIES), size=rows, p=mix)
    online_prob = _ONLINE_PROB + 0.5 * shift * (1 - _ONLINE_PROB) * (_ONLINE_PROB > 0)
    online = rng.random(rows) < np.clip(online_prob[category] * cards.online_factor[card], 0, 0.99)
    # A few card-not-present purchases are phone or mail orders, not online.
    card_present = ~online & (rng.random(rows) < 0.97)

    amount = cards.spend_scale[card] * rng.lognormal(
        np.log(_AMOUNT_MEDIAN[category]), _AMOUNT_SIGMA[category]
    )
    # Lunch and evening peaks plus a thin layer of night activity.
    hour = np.where(
        rng.random(rows) < 0.45, rng.normal(12.5, 2.0, rows), rng.normal(19.0, 2.5, rows)
    )
    hour = np.where(rng.random(rows) < 0.05, rng.uniform(0, 24, rows), hour)

    # Card present: near home, except people travelling; online: IP geolocation error.
    travelling = (rng.random(rows) < 0.03) | ((category == TRAVEL) & (rng.random(rows) < 0.5))
    distance = np.where(
        online,
        rng.lognormal(np.log(15.0), 1.2, rows),
        np.where(
            travelling, rng.lognormal(np.log(600.0), 1.1, rows), rng.lognormal(np.log(6), 1, rows)
        ),
    )
    foreign_prob = np.where(online, 0.06, np.where(distance > 800, 0.6, 0.005))

    count_1h = 1 + rng.poisson(0.08 * cards.daily_rate[card])
    count_24h = count_1h + rng.poisson(cards.daily_rate[card])
    minutes = _minutes_since_last(rng, count_1h, cards.daily_rate[card])
    return {
        "amount": amount,
        "hour": hour,
        "merchant_category": category.astype(np.float64),
        "distance_from_home_km": distance,
        "txn_count_1h": count_1h.astype(np.float64),
        "txn_count_24h": count_24h.astype(np.float64),
        "minutes_since_last_txn": minutes,
        "card_present": card_present.astype(np.float64),
        "online": online.astype(np.float64),
        "device_change": (online & (rng.random(rows) < 0.03)).astype(np.float64),
        "foreign_merchant": (rng.random(rows) < foreign_prob).astype(np.float64),
    }


def _derive(
    columns: dict[str, FloatArray], card: IntArray, cards: Cards, drift: DriftKnobs
) -> None:
    """Finish the columns that depend on others, after frauds were written in."""
    inflation = 1.0 + drift.amount_inflation
    amount = np.maximum(np.round(columns["amount"] * inflation, 2), 0.01)
    columns["amount"] = amount
    # The card's average is a trailing one, so it follows inflation and the ratio does not.
    columns["amount_to_avg_ratio"] = amount / (cards.avg_amount[card] * inflation)
    columns["hour"] = np.mod(columns["hour"], 24.0)
    columns["distance_from_home_km"] = np.clip(columns["distance_from_home_km"], 0.0, 20_000.0)
    columns["minutes_since_last_txn"] = np.clip(columns["minutes_since_last_txn"], 0.1, 43_200.0)
    columns["txn_count_24h"] = np.maximum(columns["txn_count_24h"], columns["txn_count_1h"])
    online = columns["online"] == 1
    columns["card_present"] = np.where(online, 0.0, columns["card_present"])
    columns["device_change"] = np.where(online, columns["device_change"], 0.0)


def _minutes_since_last(
    rng: np.random.Generator, count_1h: NDArray[np.int64] | FloatArray, daily_rate: FloatArray
) -> FloatArray:
    """Gap to the card's previous purchase, consistent with its count in the last hour."""
    return np.where(
        count_1h > 1,
        rng.uniform(0.5, 60.0, count_1h.size),
        60.0 + rng.exponential(1440.0 / daily_rate),
    )


def _pick(rng: np.random.Generator, size: int, weights: dict[int, float]) -> FloatArray:
    """Draw merchant categories from a sparse ``{category: weight}`` mapping."""
    codes = np.array(list(weights))
    p = np.array(list(weights.values()))
    return codes[rng.choice(codes.size, size=size, p=p / p.sum())].astype(np.float64)


def _card_testing(
    rng: np.random.Generator, at: IntArray, card: IntArray, cards: Cards, c: dict[str, FloatArray]
) -> None:
    """Stolen card numbers probed with tiny online purchases, in quick succession."""
    n = at.size
    c["online"][at], c["card_present"][at] = 1.0, 0.0
    c["merchant_category"][at] = _pick(
        rng, n, {DIGITAL: 0.6, MARKETPLACE: 0.25, ENTERTAINMENT: 0.1, RESTAURANTS: 0.05}
    )
    c["amount"][at] = rng.lognormal(np.log(2.0), 0.9, n)
    burst = 1 + rng.poisson(rng.lognormal(np.log(3.0), 0.7, n))
    c["txn_count_1h"][at] = burst
    c["txn_count_24h"][at] = burst + rng.poisson(cards.daily_rate[card])
    c["minutes_since_last_txn"][at] = np.where(
        burst > 1, rng.exponential(4.0, n), 60.0 + rng.exponential(600.0, n)
    )
    c["hour"][at] = np.where(rng.random(n) < 0.6, rng.uniform(0, 24, n), c["hour"][at])
    c["distance_from_home_km"][at] = rng.lognormal(np.log(25.0), 1.5, n)
    c["device_change"][at] = (rng.random(n) < 0.3).astype(np.float64)
    c["foreign_merchant"][at] = (rng.random(n) < 0.25).astype(np.float64)


def _account_takeover(
    rng: np.random.Generator, at: IntArray, card: IntArray, cards: Cards, c: dict[str, FloatArray]
) -> None:
    """A fraudster logs into the account from a new device and spends big, often at night."""
    n = at.size
    c["online"][at], c["card_present"][at] = 1.0, 0.0
    c["device_change"][at] = (rng.random(n) < 0.75).astype(np.float64)
    c["merchant_category"][at] = _pick(
        rng, n, {ELECTRONICS: 0.4, MARKETPLACE: 0.3, TRAVEL: 0.15, DIGITAL: 0.15}
    )
    c["amount"][at] = cards.avg_amount[card] * rng.lognormal(np.log(4.0), 0.7, n)
    c["hour"][at] = np.where(rng.random(n) < 0.65, rng.normal(3.0, 2.0, n), c["hour"][at])
    c["distance_from_home_km"][at] = rng.lognormal(np.log(80.0), 1.6, n)
    c["txn_count_1h"][at] = 1 + rng.poisson(1.5, n)
    c["txn_count_24h"][at] = c["txn_count_1h"][at] + rng.poisson(cards.daily_rate[card])
    c["minutes_since_last_txn"][at] = _minutes_since_last(
        rng, c["txn_count_1h"][at], cards.daily_rate[card]
    )
    c["foreign_merchant"][at] = (rng.random(n) < 0.2).astype(np.float64)


def _geo_anomaly(
    rng: np.random.Generator, at: IntArray, card: IntArray, cards: Cards, c: dict[str, FloatArray]
) -> None:
    """A cloned card used in person far from home, in categories that resell well."""
    n = at.size
    c["online"][at], c["card_present"][at], c["device_change"][at] = 0.0, 1.0, 0.0
    resale = {ELECTRONICS: 0.35, APPAREL: 0.2, ENTERTAINMENT: 0.15, HEALTH: 0.15, FUEL: 0.1}
    category = _pick(rng, n, resale | {TRAVEL: 0.05})
    c["merchant_category"][at] = category
    code = category.astype(np.int64)
    c["amount"][at] = cards.spend_scale[card] * rng.lognormal(
        np.log(1.5 * _AMOUNT_MEDIAN[code]), _AMOUNT_SIGMA[code]
    )
    c["distance_from_home_km"][at] = rng.lognormal(np.log(1500.0), 1.0, n)
    c["foreign_merchant"][at] = (rng.random(n) < 0.7).astype(np.float64)
    c["txn_count_1h"][at] = 1 + rng.poisson(1.0, n)
    c["txn_count_24h"][at] = c["txn_count_1h"][at] + rng.poisson(1.5 * cards.daily_rate[card])
    c["minutes_since_last_txn"][at] = _minutes_since_last(
        rng, c["txn_count_1h"][at], cards.daily_rate[card]
    )


def _collusion(
    rng: np.random.Generator, at: IntArray, card: IntArray, cards: Cards, c: dict[str, FloatArray]
) -> None:
    """Refunds and charges run through one complicit merchant after hours (drift only)."""
    n = at.size
    c["online"][at], c["card_present"][at], c["device_change"][at] = 0.0, 1.0, 0.0
    c["merchant_category"][at] = float(_COLLUSION_CATEGORY)
    c["amount"][at] = rng.lognormal(np.log(180.0), 0.3, n)
    c["hour"][at] = rng.normal(3.5, 1.2, n)
    c["distance_from_home_km"][at] = rng.lognormal(np.log(8.0), 1.0, n)
    c["foreign_merchant"][at] = 0.0
    c["txn_count_1h"][at] = 1 + rng.poisson(2.0, n)
    c["txn_count_24h"][at] = c["txn_count_1h"][at] + rng.poisson(10.0, n)
    c["minutes_since_last_txn"][at] = rng.uniform(2.0, 40.0, n)


_FRAUD_WRITERS = {
    "card_testing": _card_testing,
    "account_takeover": _account_takeover,
    "geo_anomaly": _geo_anomaly,
    "collusion": _collusion,
}
