"""The base of every refusal AnomalyFlow makes on purpose.

Bad input (data, params, files on disk) and refused actions (a gate-failed promotion,
a failed smoke test) raise a subclass with a one-line message naming the file, key,
column or field and the rule. Entry points turn it into that line and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import os

DEBUG_VARIABLE = "ANOMALYFLOW_DEBUG"  # set to 1: refusals keep their traceback


def debugging() -> bool:
    """Whether the user asked for tracebacks of refusals (``--debug``)."""
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


class Refusal(Exception):
    """A clear, expected refusal: the message is the whole story for the user."""

    def __reduce__(self) -> tuple[object, ...]:
        """Rebuilt from its message and fields, not by calling ``__init__`` again.

        A refusal raised in a worker process (a benchmark job, a Dask task) crosses back
        pickled; subclasses whose ``__init__`` takes other arguments than the message
        would fail to unpickle, and the parent would see a broken pool instead of it.
        """
        return _rebuilt_refusal, (type(self), str(self), dict(vars(self)))


def _rebuilt_refusal(kind: type[Refusal], message: str, fields: dict[str, object]) -> Refusal:
    refusal = kind.__new__(kind)
    Exception.__init__(refusal, message)
    vars(refusal).update(fields)
    return refusal


class RefusalTracebackFilter(logging.Filter):
    """Drops the traceback from a log record of a refusal; the message stays.

    An orchestrator logs every exception with its traceback; for a refusal that is dozens
    of lines of library frames before the one line the user needs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], Refusal) and not debugging():
            record.exc_info, record.exc_text = None, None
        return True


def quiet_refusal_tracebacks(*logger_names: str) -> None:
    """Log refusals on these loggers as their message alone (once per logger)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RefusalTracebackFilter) for f in logger.filters):
            logger.addFilter(RefusalTracebackFilter())
