"""Serving figures (issue #5), each beside the in-process model and a bare BentoML service.

``measure_service`` talks to the real BentoML service, started on 127.0.0.1 in the same
call, over persistent HTTP connections (keep-alive), so its figures cover the service
(HTTP parsing, JSON, validation, the model) and not TCP connection set-up. Beside it runs
a bare BentoML service with the same request shape and no model
(:mod:`anomalyflow.benchmark.bare_service`), sent the same requests by the same client
in interleaved rounds: the ratio of the two p50s is what our service adds to BentoML's
least (issue 19). The
batch-file scoring figures are in :mod:`anomalyflow.benchmark.batch_scoring`, which
shares this module's production-model lookup and row resampling.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import torch

from anomalyflow.detector import AnomalyDetector
from anomalyflow.registry.store import ModelVersion, Registry, RegistryError
from anomalyflow.registry.verify import verified_graph
from anomalyflow.serving.graph import GraphScorer
from anomalyflow.serving.server import TORCH_THREADS, RunningService, running_service

P50_TARGET_MS = 5.0  # single-record latency target of issue #5
BARE_RATIO_TARGET = 1.5  # single-record p50 over a bare BentoML service's (issue 19)
BARE_SERVICE = "anomalyflow.benchmark.bare_service:BareService"
JITTER = 0.05  # noise added to resampled rows, in units of each feature's spread
LATENCY_ROUNDS = 10  # in-process, served and bare latencies alternate in this many rounds


@dataclass(frozen=True)
class ServiceFigures:
    """HTTP figures of the service beside the same calls on the in-process model.

    Every ``*_ratio`` is service cost over in-process cost (time, or speed inverted), so
    it reads as "the service is this many times slower than calling the model".
    """

    version: str
    requests: int
    concurrency: int
    batch_records: int
    p50_ms: float
    p99_ms: float
    in_process_p50_ms: float
    in_process_p99_ms: float
    bare_p50_ms: float  # the bare BentoML service, same requests, same client
    bare_p99_ms: float
    # CPU per single-record request, all of a service's processes (Linux; else NaN):
    # steadier than latency on a shared machine, where preemption inflates latency
    cpu_ms: float
    bare_cpu_ms: float
    requests_per_second: float
    in_process_calls_per_second: float
    batch_rows_per_second: float
    in_process_batch_rows_per_second: float

    @property
    def latency_ratio(self) -> float:
        """Single-record p50 over the in-process call's p50."""
        return self.p50_ms / self.in_process_p50_ms

    @property
    def bare_ratio(self) -> float:
        """Single-record p50 over the bare BentoML service's p50."""
        return self.p50_ms / self.bare_p50_ms

    @property
    def bare_cpu_ratio(self) -> float:
        """CPU per single-record request over the bare BentoML service's."""
        return self.cpu_ms / self.bare_cpu_ms

    @property
    def bare_target_met(self) -> bool:
        return self.bare_ratio <= BARE_RATIO_TARGET

    @property
    def concurrency_ratio(self) -> float:
        """In-process calls/s over service requests/s, both with ``concurrency`` threads."""
        return self.in_process_calls_per_second / self.requests_per_second

    @property
    def batch_ratio(self) -> float:
        """In-process rows/s over service rows/s on ``batch_records``-record requests."""
        return self.in_process_batch_rows_per_second / self.batch_rows_per_second

    @property
    def p50_target_met(self) -> bool:
        return self.p50_ms < P50_TARGET_MS


@dataclass(frozen=True)
class _Workload:
    """What one ``measure_service`` run sends, and the in-process model it is compared to."""

    version: ModelVersion
    detector: AnomalyDetector  # torch, what the served scores must match
    scorer: AnomalyDetector | GraphScorer  # what the service scores with
    rows: np.ndarray
    requests: int
    singles: list[bytes]  # one single-record body per request
    batch: np.ndarray
    batch_body: bytes

    def score_in_process(self, i: int) -> object:
        at = i % self.requests
        return self.scorer.decision_function(self.rows[at : at + 1])


@dataclass(frozen=True)
class _Endpoint:
    """The running service's address, sent the workload's single-record bodies."""

    host: str
    port: int | None
    singles: list[bytes]
    pid: int  # the server process, parent of its workers

    def connect(self, warm_up: int = 1) -> http.client.HTTPConnection:
        """A connection that has answered ``warm_up`` requests (TCP set-up done).

        Opened right before its figure: the server closes a connection idle for a
        few seconds (uvicorn's keep-alive timeout), e.g. during an in-process block.
        """
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        for i in range(warm_up):
            _post(connection, self.singles[i % len(self.singles)])
        return connection

    def sender(self, connection: http.client.HTTPConnection) -> Callable[[int], object]:
        return lambda i: _post(connection, self.singles[i % len(self.singles)])


def measure_service(
    registry: Registry,
    params_file: Path,
    requests: int,
    concurrency: int,
    batch_records: int = 1000,
    batch_requests: int = 20,
) -> ServiceFigures:
    """Latency, throughput and batch speed of the served production model.

    Args:
        registry: its production version is served and loaded in process.
        params_file: the params.yaml the service reads (``serving`` section).
        requests: single-record requests for the latency percentiles, and in total
            across the ``concurrency`` clients.
        concurrency: client threads, each with its own connection.
        batch_records: records per batch request (at most ``serving.max_batch_records``).
        batch_requests: batch requests sent one after another.
    """
    work = _prepare(registry, requests, batch_records)
    with (
        _torch_threads(TORCH_THREADS),
        running_service(registry.home, params_file, model_name=registry.name) as service,
        running_service(registry.home, params_file, service=BARE_SERVICE) as bare_service,
    ):
        endpoint = _endpoint(service, work.singles)
        bare = _endpoint(bare_service, work.singles)
        with closing(endpoint.connect(warm_up=0)) as client:
            answer = json.loads(_post(client, work.batch_body))
        _check(answer, work.version.version, work.detector.decision_function(work.batch))
        single = _latency_rounds(work, endpoint, bare)
        in_process_rate, served_rate = _concurrent_rates(work, endpoint, concurrency)
        in_process_batch, served_batch = _batch_rates(work, endpoint, batch_requests)
    return ServiceFigures(
        version=work.version.version,
        requests=requests,
        concurrency=concurrency,
        batch_records=batch_records,
        p50_ms=float(np.percentile(single.served_ms, 50)),
        p99_ms=float(np.percentile(single.served_ms, 99)),
        in_process_p50_ms=float(np.percentile(single.in_process_ms, 50)),
        in_process_p99_ms=float(np.percentile(single.in_process_ms, 99)),
        bare_p50_ms=float(np.percentile(single.bare_ms, 50)),
        bare_p99_ms=float(np.percentile(single.bare_ms, 99)),
        cpu_ms=single.served_cpu_ms,
        bare_cpu_ms=single.bare_cpu_ms,
        requests_per_second=served_rate,
        in_process_calls_per_second=in_process_rate,
        batch_rows_per_second=served_batch,
        in_process_batch_rows_per_second=in_process_batch,
    )


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """This process scores with ``count`` torch threads meanwhile: the in-process twin
    runs as the service does, and no idle pool spins beside the services."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def production_version(registry: Registry) -> ModelVersion:
    """The registry's production version (a :class:`RegistryError` when there is none)."""
    version = registry.production()
    if version is None:
        raise RegistryError(f"no production model in {registry.home}")
    return version


def resample(smoke: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """``rows`` rows drawn from ``smoke`` with noise of ``JITTER`` times each spread."""
    rng = np.random.default_rng(seed)
    spread = smoke.std(axis=0) + 1e-3
    picked: np.ndarray = smoke[rng.integers(0, len(smoke), rows)].astype(np.float64)
    picked += rng.normal(0.0, JITTER, picked.shape) * spread
    return picked.astype(np.float32)


def _prepare(registry: Registry, requests: int, batch_records: int) -> _Workload:
    """The production model loaded in process and the request bodies built from it."""
    version = production_version(registry)
    detector = AnomalyDetector.load(version.detector_dir)
    rows = resample(np.load(version.smoke_batch), max(requests, batch_records), seed=0)
    names = detector.feature_names_
    batch = rows[:batch_records]
    return _Workload(
        version=version,
        detector=detector,
        scorer=verified_graph(version.path, version.version, detector) or detector,
        rows=rows,
        requests=requests,
        singles=[_body(rows[i : i + 1], names) for i in range(requests)],
        batch=batch,
        batch_body=_body(batch, names),
    )


def _endpoint(service: RunningService, singles: list[bytes]) -> _Endpoint:
    address = urlsplit(service.url)
    return _Endpoint(str(address.hostname), address.port, singles, service.process.pid)


@dataclass(frozen=True)
class _Latencies:
    """Milliseconds per single-record call, and each service's CPU milliseconds a call."""

    in_process_ms: np.ndarray
    served_ms: np.ndarray
    bare_ms: np.ndarray
    served_cpu_ms: float
    bare_cpu_ms: float


def _latency_rounds(work: _Workload, served: _Endpoint, bare: _Endpoint) -> _Latencies:
    """Single-record calls in process, served and bare, in rounds.

    Each service figure is taken right beside its in-process and bare twins, so all see
    about the same load on a shared machine: the latencies in alternating rounds, not
    call by call, as a server's threads may keep spinning a moment after each answer
    and would slow a call made just then. The two services swap turns every round.
    """
    _latencies(work.score_in_process, range(20))  # warm-up
    parts: tuple[list[np.ndarray], ...] = ([], [], [])
    cpu_seconds = [0.0, 0.0, 0.0]
    for turn, part in enumerate(np.array_split(np.arange(work.requests), LATENCY_ROUNDS)):
        parts[0].append(_latencies(work.score_in_process, part))
        for at in (1, 2) if turn % 2 == 0 else (2, 1):
            endpoint = served if at == 1 else bare
            with closing(endpoint.connect(warm_up=5)) as client:
                before = process_tree_cpu_seconds(endpoint.pid)
                parts[at].append(_latencies(endpoint.sender(client), part))
                cpu_seconds[at] += process_tree_cpu_seconds(endpoint.pid) - before
    in_process, served_ms, bare_ms = (np.concatenate(p) for p in parts)
    per_call_ms = [1000.0 * seconds / work.requests for seconds in cpu_seconds]
    return _Latencies(in_process, served_ms, bare_ms, per_call_ms[1], per_call_ms[2])


def process_tree_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` and its descendants so far, from
    Linux's ``/proc``; NaN where there is none."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, pending = 0.0, [pid]
    try:
        while pending:
            current = pending.pop()
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
    except OSError:
        return math.nan
    return total


def _concurrent_rates(
    work: _Workload, endpoint: _Endpoint, concurrency: int
) -> tuple[float, float]:
    """Single-record calls/s with ``concurrency`` threads: in process, then served."""
    per_client = max(1, work.requests // concurrency)
    in_process_rate = _rate([work.score_in_process] * concurrency, per_client)
    clients = [endpoint.connect() for _ in range(concurrency)]
    served_rate = _rate([endpoint.sender(c) for c in clients], per_client)
    for client in clients:
        client.close()
    return in_process_rate, served_rate


def _batch_rates(work: _Workload, endpoint: _Endpoint, count: int) -> tuple[float, float]:
    """Rows/s of ``count`` batch calls one after another: in process, then served."""
    records = len(work.batch)
    in_process = records * _repeat_rate(lambda: work.scorer.decision_function(work.batch), count)
    with closing(endpoint.connect()) as client:
        served = records * _repeat_rate(lambda: _post(client, work.batch_body), count)
    return in_process, served


def _body(rows: np.ndarray, names: tuple[str, ...]) -> bytes:
    records = [dict(zip(names, map(float, row), strict=True)) for row in rows]
    return json.dumps({"records": records}).encode()


def _post(connection: http.client.HTTPConnection, body: bytes) -> bytes:
    """POST ``/score`` on a kept-alive connection; the whole answer is read to reuse it."""
    connection.request("POST", "/score", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        raise RuntimeError(f"/score answered {response.status}: {answer[:500]!r}")
    return answer


def _check(answer: dict[str, Any], version: str, expected: np.ndarray) -> None:
    """The service must serve ``version`` and score as the in-process model does."""
    served = np.array([r["score"] for r in answer["results"]])
    if answer["model_version"] != version or not np.allclose(
        served, expected, rtol=1e-5, atol=1e-6
    ):
        raise RuntimeError(
            f"the service ({answer['model_version']}) does not score as production ({version})"
        )


def _latencies(call: Callable[[int], object], indexes: Iterable[int]) -> np.ndarray:
    """Milliseconds per ``call(i)`` for each ``i`` of ``indexes``, one after another."""
    times = []
    for i in indexes:
        started = time.perf_counter()
        call(int(i))
        times.append(time.perf_counter() - started)
    return np.array(times) * 1000.0


def _repeat_rate(call: Callable[[], object], count: int) -> float:
    """Calls/s of ``call()`` made ``count`` times one after another."""
    started = time.perf_counter()
    for _ in range(count):
        call()
    return count / (time.perf_counter() - started)


def _rate(calls: list[Callable[[int], object]], per_thread: int) -> float:
    """Calls/s with one thread per entry of ``calls``, each making ``per_thread`` calls."""
    start = threading.Barrier(len(calls) + 1)
    failures: list[BaseException] = []

    def work(call: Callable[[int], object], offset: int) -> None:
        start.wait()
        try:
            for i in range(per_thread):
                call(offset + i)
        except BaseException as error:  # re-raised in the caller's thread
            failures.append(error)

    threads = [
        threading.Thread(target=work, args=(call, n * per_thread)) for n, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    return len(calls) * per_thread / elapsed
