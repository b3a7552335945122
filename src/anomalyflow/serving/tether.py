"""Servers that end with the process that started them (Linux).

``kill -9`` of ``anomalyflow run`` during its promotion smoke test once left the smoke
test's ``bentoml serve`` serving on its port for good, and its worker with it (BentoML's
workers start a session of their own, so no process-group kill reaches them). Linux can
signal a process when its parent ends (``prctl(PR_SET_PDEATHSIG)``): the smoke test's
server asks for SIGTERM, on which BentoML stops its workers, and each worker asks the
same of its server, so that a server killed outright takes its workers with it too.
Elsewhere nothing is asked, and servers outlive a parent killed outright.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

SERVER_PID = "ANOMALYFLOW_SERVER_PID"  # the bentoml serve process; its workers end with it
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def end_with_parent(parent: int, sig: signal.Signals = signal.SIGTERM) -> None:
    """Have the kernel send ``sig`` to this process when ``parent`` ends, or send it now
    if ``parent`` has ended already.

    The kernel watches the thread that started this process, not only its process: the
    starter must keep the server in the thread that started it (as
    :func:`anomalyflow.serving.server.running_service` does).
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # it ended before we asked: no one will send the signal
        os.kill(os.getpid(), sig)


def tethered(command: list[str]) -> list[str]:
    """``command`` started so that it ends with this process (see :func:`main`)."""
    return [sys.executable, "-m", "anomalyflow.serving.tether", str(os.getpid()), *command]


def main(argv: list[str]) -> None:
    """``PARENT_PID COMMAND...``: end with ``PARENT_PID``, then become ``COMMAND``.

    ``exec`` keeps the process id and the parent-death signal, so the server that
    replaces this process is tied to the parent, and its workers to it by
    :data:`SERVER_PID`. Exec, not ``preexec_fn``: the parent runs threads (Prefect),
    and a forked child of a threaded process may deadlock before it reaches ``exec``.
    """
    parent, *command = argv
    end_with_parent(int(parent))
    os.environ[SERVER_PID] = str(os.getpid())
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
