"""Turning a JSON request's records into a feature matrix, or a 4xx naming the field.

Kept apart from the BentoML service so the rules can be tested without a server.
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

import numpy as np

from anomalyflow.data.loaders import FLOAT32_MAX


class RequestRejected(ValueError):
    """A request the service refuses: the message names the record and field."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status


def records_to_matrix(
    records: list[dict[str, Any]], features: tuple[str, ...], max_records: int
) -> np.ndarray:
    """Rows ``(records, features)`` in the model's feature order, float32.

    Other keys in a record (ids, timestamps) are ignored. Booleans and numeric strings
    are refused: a silently coerced value would be scored as something it is not.
    """
    if not records:
        raise RequestRejected("'records' is empty: send at least one record")
    if len(records) > max_records:
        raise RequestRejected(
            f"'records' has {len(records)} records; at most {max_records} per request",
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )
    matrix = np.empty((len(records), len(features)), dtype=np.float32)
    for row, record in enumerate(records):
        if not isinstance(record, dict):
            raise RequestRejected(f"records[{row}] must be an object of feature: number")
        for column, name in enumerate(features):
            if name not in record:
                raise RequestRejected(f"records[{row}]: missing feature '{name}'")
            value = record[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RequestRejected(
                    f"records[{row}].{name}: expected a number, got {type(value).__name__} "
                    f"{value!r}"
                )
            try:
                number = float(value)
            except OverflowError:  # an integer too large for any float
                number = math.inf
            if not abs(number) <= FLOAT32_MAX:  # NaN, infinite, or infinite once float32
                raise RequestRejected(
                    f"records[{row}].{name}: not a finite number within float32's range"
                )
            matrix[row, column] = number
    return matrix


def finite_scores(scores: np.ndarray, what: str = "score") -> np.ndarray:
    """``scores`` (one value per record, or one row per record) when all are finite.

    A NaN or infinite score is never an answer: a client would read ``null`` or fail
    to parse it. The inputs were finite float32, so the records are beyond what the
    model can score (422), named by position.
    """
    bad = np.flatnonzero(~np.isfinite(scores).reshape(len(scores), -1).all(axis=1))
    if bad.size:
        named = ", ".join(f"records[{i}]" for i in bad[:5])
        more = f" and {bad.size - 5} more" if bad.size > 5 else ""
        raise RequestRejected(
            f"the model's {what} is not a finite number for {named}{more}; no scores were returned",
            HTTPStatus.UNPROCESSABLE_ENTITY,
        )
    return scores
