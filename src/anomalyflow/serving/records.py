"""Turning a JSON request's records into a feature matrix, or a 4xx naming the field.

Kept apart from the BentoML service so the rules can be tested without a server.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model

from anomalyflow.data.loaders import FLOAT32_MAX

MAX_PROBLEMS = 100  # listed in one answer; the count names the rest


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: where (record index, field) and what."""

    record: int | None
    field: str | None
    problem: str

    def __str__(self) -> str:
        if self.record is None:
            return f"'{self.field}' {self.problem}" if self.field else self.problem
        return f"records[{self.record}]{'.' + self.field if self.field else ''}: {self.problem}"


class RequestRejected(ValueError):
    """A request the service refuses, with every problem found in it.

    Its answer is the service's one 4xx shape: ``{"error": summary, "problems":
    [{"record": i, "field": name, "problem": text}, ...]}``.
    """

    def __init__(
        self,
        problems: list[Problem],
        status: HTTPStatus = HTTPStatus.BAD_REQUEST,
        total: int | None = None,
    ) -> None:
        more = (total or len(problems)) - 1
        super().__init__(f"{problems[0]}" + (f" (and {more} more problems)" if more else ""))
        self.problems = problems
        self.status = status

    def body(self) -> dict[str, Any]:
        """The JSON answer."""
        return {"error": str(self), "problems": [asdict(p) for p in self.problems]}


def record_model(features: tuple[str, ...], example: np.ndarray) -> type[BaseModel]:
    """The request record as the API documents it: every feature a required number, with
    a real row's value as its example (BentoML's Swagger page at ``/`` shows them).

    Validation stays lenient (any value, any key, nothing required): the service checks
    each record itself, so one answer lists every problem, and ``model_dump(
    exclude_unset=True)`` tells a missing feature from a null one.
    """
    fields: dict[str, Any] = {
        name: (Any, Field(default=None, json_schema_extra={"type": "number", "examples": [v]}))
        for name, v in zip(features, example.astype(float).tolist(), strict=True)
    }
    config = ConfigDict(extra="allow", json_schema_extra={"required": list(features)})
    model: type[BaseModel] = create_model("Record", __config__=config, **fields)
    return model


def records_to_matrix(
    records: list[dict[str, Any]], features: tuple[str, ...], max_records: int
) -> np.ndarray:
    """Rows ``(records, features)`` in the model's feature order, float32.

    Other keys in a record (ids, timestamps) are ignored. Booleans and numeric strings
    are refused: a silently coerced value would be scored as something it is not. Every
    record is checked, so one answer lists every problem (up to ``MAX_PROBLEMS``).
    """
    if not records:
        raise RequestRejected([Problem(None, "records", "is empty: send at least one record")])
    if len(records) > max_records:
        raise RequestRejected(
            [Problem(None, "records", f"has {len(records)}; at most {max_records} per request")],
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )
    matrix = np.empty((len(records), len(features)), dtype=np.float32)
    problems: list[Problem] = []
    for row, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(Problem(row, None, "must be an object of feature: number"))
            continue
        for column, name in enumerate(features):
            value = _checked_value(record, name)
            if isinstance(value, str):
                problems.append(Problem(row, name, value))
            else:
                matrix[row, column] = value
    if problems:
        raise RequestRejected(problems[:MAX_PROBLEMS], total=len(problems))
    return matrix


def _checked_value(record: dict[str, Any], name: str) -> float | str:
    """The feature's value as a float32-safe number, or what is wrong with it."""
    if name not in record:
        return "missing feature"
    value = record[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {type(value).__name__} {value!r}"[:200]
    try:
        number = float(value)
    except OverflowError:  # an integer too large for any float
        number = math.inf
    if not abs(number) <= FLOAT32_MAX:  # NaN, infinite, or infinite once float32
        return "not a finite number within float32's range"
    return number


def finite_scores(scores: np.ndarray, what: str = "score") -> np.ndarray:
    """``scores`` (one value per record, or one row per record) when all are finite.

    A NaN or infinite score is never an answer: a client would read ``null`` or fail
    to parse it. The inputs were finite float32, so the records are beyond what the
    model can score (422), named by position.
    """
    bad = np.flatnonzero(~np.isfinite(scores).reshape(len(scores), -1).all(axis=1))
    if bad.size:
        problem = f"the model's {what} is not a finite number; no scores were returned"
        problems = [Problem(int(i), None, problem) for i in bad[:MAX_PROBLEMS]]
        raise RequestRejected(problems, HTTPStatus.UNPROCESSABLE_ENTITY, total=int(bad.size))
    return scores
