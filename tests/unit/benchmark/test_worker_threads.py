"""Each benchmark worker runs on one thread in every library, whatever the parent's setting."""

from __future__ import annotations

import os

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
