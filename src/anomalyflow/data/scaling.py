"""Robust scaling fitted on training rows only and saved with the model.

Features of anomaly data sets differ wildly in scale and skew (counts, amounts, pixel
intensities). Each is centred on its median, divided by its robust spread, then passed
through ``arcsinh``: linear near the centre, logarithmic in the tails, so a heavy tail
neither dominates the network nor is clipped away. How extreme a value is often *is*
the anomaly, so no value is capped.
"""

from __future__ import annotations

import numpy as np

_IQR_TO_STD = 1.349  # the interquartile range of a standard normal


class RobustScaler:
    """Per-feature ``arcsinh((x - median) / spread)``.

    Attributes:
        center_: ``(features,)`` training medians.
        spread_: ``(features,)`` IQR / 1.349, or the standard deviation where the IQR is
            zero (mostly-constant or binary features), or 1 for constant features.
    """

    def __init__(self) -> None:
        self.center_: np.ndarray | None = None
        self.spread_: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> RobustScaler:
        """Learn medians and spreads from ``x`` of shape ``(rows, features)``."""
        values = x.astype(np.float64)
        self.center_ = np.median(values, axis=0)
        low, high = np.percentile(values, [25, 75], axis=0)
        iqr = (high - low) / _IQR_TO_STD
        std = values.std(axis=0)
        self.spread_ = np.where(iqr > 0, iqr, np.where(std > 0, std, 1.0))
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scaled float32 copy of ``x`` ``(rows, features)``."""
        if self.center_ is None or self.spread_ is None:
            raise RuntimeError("RobustScaler is not fitted")
        scaled: np.ndarray = np.arcsinh((x - self.center_) / self.spread_).astype(np.float32)
        return scaled

    def state(self) -> dict[str, np.ndarray]:
        """Arrays to save beside the weights."""
        if self.center_ is None or self.spread_ is None:
            raise RuntimeError("RobustScaler is not fitted")
        return {"scaler.center": self.center_, "scaler.spread": self.spread_}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> RobustScaler:
        """Rebuild a fitted scaler from :meth:`state`."""
        scaler = cls()
        scaler.center_ = np.asarray(state["scaler.center"], dtype=np.float64)
        scaler.spread_ = np.asarray(state["scaler.spread"], dtype=np.float64)
        return scaler
