"""The protocol as units spread over processes, each unit journaled as it ends.

A unit is one data set and seed: every method on one split. Units share nothing, so a run
at every budget (hours on two cores) spreads over the cores of a bigger machine with
``jobs``, and a run killed half-way resumes from its journal. Each worker process is given
one thread (torch, OpenMP), so ``jobs`` processes use ``jobs`` cores and do not slow each
other down by fighting over threads.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from anomalyflow.benchmark.journal import Journal
from anomalyflow.benchmark.protocol import Budget, Outcome, run_unit
from anomalyflow.detector import DetectorSettings
from anomalyflow.integrity import file_sha256

Unit = tuple[Path, int]
"""A data set's file and a seed."""


def run_description(
    paths: list[Path], settings: DetectorSettings, budget: Budget, names: list[str]
) -> dict[str, Any]:
    """What a run is, as its journal records it: a unit is reused only by the same run.

    The same run means the same budget, methods, detector settings and data files, and
    the same code: AnomalyFlow's sources and the versions of the libraries every method
    stands on.
    """
    return {
        "budget": asdict(budget),
        "methods": sorted(names),
        "settings": asdict(settings),
        "data": {path.stem: file_sha256(path) for path in paths},
        "code": _source_sha256(),
        "libraries": {name: _version(name) for name in LIBRARIES},
    }


LIBRARIES = ("numpy", "torch", "scikit-learn", "catboost", "xgboost", "pyod", "deepod")


def _source_sha256() -> str:
    """One SHA-256 over AnomalyFlow's Python sources: a changed line is another run."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(str(source.relative_to(package)).encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def run_benchmark(
    units: list[Unit],
    settings: DetectorSettings,
    budget: Budget,
    names: list[str],
    journal: Journal,
    jobs: int = 1,
    on_unit: Callable[[list[Outcome]], None] | None = None,
) -> list[Outcome]:
    """Every method ``names`` on every unit not yet in ``journal``, ``jobs`` at a time.

    Returns the outcomes of every unit (those resumed included) in the order of ``units``.
    A unit that fails stops the run; the units finished before it stay in the journal.
    """
    todo = [unit for unit in units if (unit[0].stem, unit[1]) not in journal.units]
    for outcomes in _finished_units(todo, settings, budget, names, jobs):
        journal.record(outcomes)
        if on_unit is not None:
            on_unit(outcomes)
    return [o for path, seed in units for o in journal.units[(path.stem, seed)]]


def _finished_units(
    todo: list[Unit], settings: DetectorSettings, budget: Budget, names: list[str], jobs: int
) -> Iterator[list[Outcome]]:
    """Each unit's outcomes as it finishes: in order with one job, biggest first with more."""
    if jobs == 1:
        for path, seed in todo:
            yield unit_outcomes(path, seed, settings, budget, names)
        return
    biggest_first = sorted(todo, key=lambda unit: -unit[0].stat().st_size)
    with worker_pool(jobs) as pool:
        futures = [
            pool.submit(unit_outcomes, path, seed, settings, budget, names)
            for path, seed in biggest_first
        ]
        for future in as_completed(futures):
            if future.exception() is not None:
                for other in futures:
                    other.cancel()  # those not started; the finished stay journaled
            yield future.result()


def unit_outcomes(
    path: Path, seed: int, settings: DetectorSettings, budget: Budget, names: list[str]
) -> list[Outcome]:
    """Run one unit with the methods ``names`` (a worker rebuilds them: closures don't pickle)."""
    from anomalyflow.benchmark.peers import protocol_methods

    every = protocol_methods(settings, budget.label_ratio, budget.labels).run
    return run_unit(path, seed, {name: every[name] for name in names}, budget)


@contextmanager
def worker_pool(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """``jobs`` worker processes, each held to one thread (spawned: torch and fork do not mix)."""
    context = multiprocessing.get_context("spawn")
    with (
        _single_threaded_children(),
        ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
        ) as pool,
    ):
        yield pool


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Read by OpenMP and the BLAS libraries once, when they load: before the worker's first line."""


@contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Start worker processes with one thread per library, and leave this process as it was.

    A spawned worker imports numpy and torch while it unpickles its first task, before any
    initializer runs, so the limits must be in the environment it inherits. Without them
    each worker's BLAS starts a thread per core: two workers on two cores ran their units
    four to five times slower than one process alone.
    """
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_worker(parent: int) -> None:
    """Hold a worker to one thread, and end it with the run that started it."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)  # torch's own pool
    threadpool_limits(1)  # any BLAS or OpenMP pool already loaded
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """End this worker once ``parent`` is gone (killed: no one would read its unit).

    Otherwise a killed run's workers finish the units they hold, minutes of every core,
    before they notice; a new run started meanwhile would share the cores with them.
    """
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
