"""The built-in transactions as a day-by-day stream: what ``anomalyflow replay`` feeds in.

The days follow the built-in splits in time (history, recent, holdout) and come from the
same cards, so the first model meets the customers it learned. From ``drift_day`` on, a
drift applies (by default a new fraud typology and inflated amounts). Each day arrives
unlabeled, as real traffic does; which of its frauds will be confirmed, and when, is
the simulator's knowledge, handed to the pipeline later through the feedback path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anomalyflow.data.synthetic import (
    ID,
    LABEL,
    SPLIT_DAYS,
    draw_cards,
    draw_split,
)
from anomalyflow.params import DriftKnobs, SyntheticParams

FIRST_DAY = sum(SPLIT_DAYS.values())  # the day after the built-in holdout ends
GENERATED_SPLITS = 5  # seed children generate() draws; the stream takes the next ones
DRIFT_EVENT = DriftKnobs(amount_inflation=0.3, new_fraud_pattern=True)


@dataclass(frozen=True)
class Day:
    """One day of traffic."""

    index: int  # 0 for the first streamed day
    frame: pd.DataFrame  # as it arrives: id, time, features and label 0 (nothing confirmed)
    truth: np.ndarray  # 1 for every fraud: what the replay scores models against
    confirmed: np.ndarray  # 1 for the frauds that will be confirmed (label_coverage)


def day_stream(
    params: SyntheticParams,
    days: int,
    rows_per_day: int,
    drift_day: int,
    drift: DriftKnobs = DRIFT_EVENT,
) -> Iterator[Day]:
    """``days`` days of ``rows_per_day`` transactions each, drifted from ``drift_day``.

    Fully determined by ``params.seed``; ids continue after the built-in splits' ids.
    """
    children = np.random.SeedSequence(params.seed).spawn(GENERATED_SPLITS + days)
    cards = draw_cards(np.random.default_rng(children[0]), max(50, params.history_rows // 20))
    first_id = params.history_rows + params.recent_rows + params.holdout_rows
    for index in range(days):
        rng = np.random.default_rng(children[GENERATED_SPLITS + index])
        knobs = drift if index >= drift_day else DriftKnobs()
        frame, truth = draw_split(
            rng, rows_per_day, cards, params.fraud_rate, knobs, FIRST_DAY + index, 1
        )
        start = first_id + index * rows_per_day
        frame.insert(0, ID, np.arange(start, start + rows_per_day, dtype=np.int64))
        frame[LABEL] = np.zeros(rows_per_day, dtype=np.int64)
        confirmed = truth * (rng.random(rows_per_day) < params.label_coverage)
        yield Day(index, frame, truth, confirmed.astype(np.int64))
