"""Request records become the float32 rows the network sees, or a 4xx naming the field."""

from __future__ import annotations

from http import HTTPStatus

import numpy as np
import pytest

from anomalyflow.serving.records import RequestRejected, finite_scores, records_to_matrix

FEATURES = ("amount", "hour")


@pytest.mark.parametrize("value", [10**400, 10**50, 1e300, -1e39])
def test_a_value_beyond_float32_is_a_400_naming_the_field(value: float) -> None:
    """A 400-digit integer once answered 500; 1e300 once became an infinite score."""
    with pytest.raises(RequestRejected) as refused:
        records_to_matrix([{"amount": 1.0, "hour": 3}, {"amount": value, "hour": 4}], FEATURES, 10)
    assert refused.value.status == HTTPStatus.BAD_REQUEST
    assert "records[1].amount" in str(refused.value)


def test_ordinary_records_keep_the_model_feature_order() -> None:
    matrix = records_to_matrix([{"hour": 3, "amount": 42.5, "id": "x"}], FEATURES, 10)
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, [[42.5, 3.0]])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_score_is_never_an_answer_but_a_422_naming_the_record(bad: float) -> None:
    with pytest.raises(RequestRejected) as refused:
        finite_scores(np.array([0.1, bad, 0.3, bad]))
    assert refused.value.status == HTTPStatus.UNPROCESSABLE_ENTITY
    assert [p["record"] for p in refused.value.body()["problems"]] == [1, 3]
    contributions = np.array([[0.1, 0.2], [0.3, bad]])
    with pytest.raises(RequestRejected, match=r"records\[1\]: the model's explanation"):
        finite_scores(contributions, "explanation")
    np.testing.assert_array_equal(finite_scores(np.array([1.0, -2.0])), [1.0, -2.0])


def test_one_answer_lists_every_problem_of_every_record() -> None:
    records = [{"amount": "12", "hour": 3}, {"amount": 1.0, "hour": 4}, "x", {"hour": True}]
    with pytest.raises(RequestRejected) as refused:
        records_to_matrix(records, FEATURES, 10)  # type: ignore[list-item]
    body = refused.value.body()
    assert [(p["record"], p["field"]) for p in body["problems"]] == [
        (0, "amount"),
        (2, None),
        (3, "amount"),
        (3, "hour"),
    ]
    assert body["error"].startswith("records[0].amount: expected a number")
