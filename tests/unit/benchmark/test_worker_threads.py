"""Each benchmark worker runs on one thread in every library, whatever the parent's setting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anomalyflow.benchmark.runner import THREAD_VARIABLES, worker_pool


def _thread_counts(_: int) -> list[int]:
    import torch
    from threadpoolctl import threadpool_info

    return [torch.get_num_threads(), *(pool["num_threads"] for pool in threadpool_info())]


def test_workers_use_one_thread_even_when_the_parent_sets_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)  # as a user's shell leaves them
    with worker_pool(2) as pool:
        counts = list(pool.map(_thread_counts, range(2)))
    assert all(count == 1 for worker in counts for count in worker), counts
    assert all(name not in os.environ for name in THREAD_VARIABLES)  # the parent unchanged


RUN_THEN_HANG = """
import time
from anomalyflow.benchmark.runner import worker_pool
with worker_pool(1) as pool:
    print(pool.submit(__import__("os").getpid).result(), flush=True)
    pool.submit(time.sleep, 600)
    time.sleep(600)
"""


def test_a_killed_runs_workers_end_with_it() -> None:
    run = subprocess.Popen([sys.executable, "-c", RUN_THEN_HANG], stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    worker = int(run.stdout.readline())
    run.kill()  # as kill -9 or an out-of-memory kill would
    run.wait()
    deadline = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")
