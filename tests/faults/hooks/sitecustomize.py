"""A fault the suite injects on purpose: freeze a process right before a chosen rename.

Python imports ``sitecustomize`` at start-up from any folder on ``PYTHONPATH``; the fault
tests put this folder there for the runs they kill. With ``ANOMALYFLOW_FAULT_FREEZE``
set, the first ``os.rename``/``os.replace`` whose destination contains it writes the
process id to ``ANOMALYFLOW_FAULT_MARKER`` and then waits forever, so the test can
``kill -9`` the process at exactly that point: the file is whole at its source, not yet
in place. Without the variable nothing is changed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

_PATTERN = os.environ.get("ANOMALYFLOW_FAULT_FREEZE")


def _freezing(real: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        if _PATTERN and _PATTERN in os.fsdecode(dst):
            with open(os.environ["ANOMALYFLOW_FAULT_MARKER"], "w") as marker:
                marker.write(str(os.getpid()))
            while True:  # until SIGKILL
                time.sleep(1)
        return real(src, dst, *args, **kwargs)

    return wrapper


if _PATTERN:
    os.rename = _freezing(os.rename)
    os.replace = _freezing(os.replace)
