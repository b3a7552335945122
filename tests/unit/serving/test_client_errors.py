"""A client's mistake is logged as one INFO line; a server error keeps its traceback."""

from __future__ import annotations

import logging
import sys

import pytest
from bentoml.exceptions import BentoMLException
from pydantic import BaseModel, ValidationError

from anomalyflow.serving.client_errors import ClientErrorsAsOneLine


class Input(BaseModel):
    records: list[dict[str, float]]


def logged(error: BaseException) -> logging.LogRecord:
    """The record BentoML's ``log_exception`` makes for ``error``, through the filter."""
    try:
        raise error
    except BaseException:
        record = logging.LogRecord(
            "bentoml._internal.server.http_app",
            logging.ERROR,
            __file__,
            1,
            "Exception on %s [%s]",
            ("/score", "POST"),
            sys.exc_info(),
        )
    assert ClientErrorsAsOneLine().filter(record)
    return record


def validation_error() -> ValidationError:
    try:
        Input.model_validate({})
    except ValidationError as error:
        return error
    raise AssertionError("validated")


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (BentoMLException("records[0]: missing feature 'x1'", error_code=400), "answered 400"),
        (BentoMLException("too many", error_code=413), "POST /score answered 413: too many"),
        (validation_error(), "POST /score answered 400: records: Field required"),
    ],
)
def test_a_client_error_is_one_info_line_without_a_traceback(
    error: BaseException, line: str
) -> None:
    record = logged(error)
    assert record.levelno == logging.INFO and record.exc_info is None
    message = logging.Formatter().format(record)
    assert line in message and "\n" not in message and "Traceback" not in message


def test_a_server_error_keeps_its_level_and_traceback() -> None:
    for error in (RuntimeError("bug"), BentoMLException("down", error_code=503)):
        record = logged(error)
        assert record.levelno == logging.ERROR and record.exc_info is not None
        assert "Traceback" in logging.Formatter().format(record)
