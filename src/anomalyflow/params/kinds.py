"""The value kinds every section's keys are declared with, and the sections' config.

YAML tells 5, 5.0, "5" and true apart, and a quoted number or a 1 for true is a slip,
so scalars are strict (an int is still fine where a float is wanted). NaN and infinity
are refused everywhere: no knob means anything with them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StrictFloat, StrictInt

from anomalyflow.params_file import KeyRule

CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)

Count = Annotated[StrictInt, Field(ge=1)]  # rows, epochs, steps, widths, samples
Whole = Annotated[StrictInt, Field(ge=0)]  # seeds, threads, epochs where 0 means "none"
Positive = Annotated[StrictFloat, Field(gt=0)]  # learning rates, durations
NonNegative = Annotated[StrictFloat, Field(ge=0)]  # penalties, tolerances, ratios
Share = Annotated[StrictFloat, Field(ge=0, le=1)]  # [0, 1]
OpenShare = Annotated[StrictFloat, Field(gt=0, lt=1)]  # (0, 1): either end is degenerate
BatchSize = Count | Literal["auto"]


def in_order(low: tuple[str, float], high: tuple[str, float]) -> None:
    """Refuse the lower bound of a ``[low, high]`` pair when it is above the upper one."""
    if low[1] > high[1]:
        raise KeyRule(low[0], low[1], f"must be at most {high[0]} ({high[1]})")
