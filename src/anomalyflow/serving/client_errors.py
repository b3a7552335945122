"""A refused request is logged as one INFO line, not as a traceback at ERROR.

BentoML logs every exception an API raises with its traceback at ERROR, the client's
mistakes (4xx) included, so a bad client floods the log with dozens of lines a request
and hides the server's real errors. Its answer to the client is unchanged.
"""

from __future__ import annotations

import logging

from bentoml.exceptions import BentoMLException
from pydantic import ValidationError

from anomalyflow.registry.audit import describe_errors

BENTOML_HTTP_LOGGER = "bentoml._internal.server.http_app"  # where BentoML logs API errors


def client_error_status(error: BaseException | None) -> int | None:
    """The 4xx status BentoML answers ``error`` with; None for a server error."""
    if isinstance(error, ValidationError):  # the body does not fit the API's signature
        return 400
    if isinstance(error, BentoMLException) and error.error_code < 500:
        return int(error.error_code)
    return None


class ClientErrorsAsOneLine(logging.Filter):
    """Rewrites BentoML's log record of a 4xx into one INFO line; others pass as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        status = client_error_status(error)
        if status is None:
            return True
        where = record.args if isinstance(record.args, tuple) and len(record.args) == 2 else ()
        path, method = where or ("?", "?")
        if isinstance(error, ValidationError):
            reason = describe_errors(error)
        else:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        record.msg, record.args = "%s %s answered %d: %s", (method, path, status, reason)
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.exc_info, record.exc_text = None, None
        return True


def log_client_errors_as_one_line() -> None:
    """Install the filter on BentoML's API logger (once; call it in the worker)."""
    logger = logging.getLogger(BENTOML_HTTP_LOGGER)
    if not any(isinstance(f, ClientErrorsAsOneLine) for f in logger.filters):
        logger.addFilter(ClientErrorsAsOneLine())
