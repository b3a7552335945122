"""Serving and batch-scoring figures (issue #5), each beside the in-process model.

``measure_service`` talks to the real BentoML service, started on 127.0.0.1 in the same
call, over persistent HTTP connections (keep-alive), so its figures cover the service
(HTTP parsing, JSON, validation, the model) and not TCP connection set-up.
``measure_batch_scoring`` scores a generated Parquet file with :func:`score_file` in a
child process, whose peak resident memory is read from the kernel when it exits.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from anomalyflow.detector import SCORE_BATCH, AnomalyDetector
from anomalyflow.registry.store import ModelVersion, Registry, RegistryError
from anomalyflow.serving.server import running_service

P50_TARGET_MS = 5.0  # single-record latency target of issue #5
MEMORY_TARGET_MIB = 1024.0  # batch scoring peak memory target of issue #5
GENERATION_CHUNK_ROWS = 250_000  # rows generated and written at a time
JITTER = 0.05  # noise added to resampled rows, in units of each feature's spread
ID_COLUMN = "transaction_id"
LATENCY_ROUNDS = 5  # in-process and served latencies alternate in this many rounds


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
    requests_per_second: float
    in_process_calls_per_second: float
    batch_rows_per_second: float
    in_process_batch_rows_per_second: float

    @property
    def latency_ratio(self) -> float:
        """Single-record p50 over the in-process call's p50."""
        return self.p50_ms / self.in_process_p50_ms

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
class BatchScoringFigures:
    """``score_file`` on a generated Parquet file beside the bare forward pass."""

    version: str
    rows: int
    output_rows: int
    flagged: int
    chunk_rows: int
    file_mib: float
    scoring_seconds: float
    child_seconds: float
    peak_memory_mib: float
    bare_forward_rows: int
    bare_forward_rows_per_second: float

    @property
    def scoring_rows_per_second(self) -> float:
        """Rows/s of ``score_file`` alone (reading, scaling, the network, writing)."""
        return self.rows / self.scoring_seconds

    @property
    def scoring_to_forward_ratio(self) -> float:
        """Share of the bare network's speed that scoring a file keeps."""
        return self.scoring_rows_per_second / self.bare_forward_rows_per_second

    @property
    def memory_target_met(self) -> bool:
        return self.peak_memory_mib < MEMORY_TARGET_MIB


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
    version = _production(registry)
    detector = AnomalyDetector.load(version.detector_dir)
    rows = _resample(np.load(version.smoke_batch), max(requests, batch_records), seed=0)
    names = detector.feature_names_
    singles = [_body(rows[i : i + 1], names) for i in range(requests)]
    batch = rows[:batch_records]
    batch_body = _body(batch, names)
    per_client = max(1, requests // concurrency)

    def score_in_process(i: int) -> object:
        return detector.decision_function(rows[i % requests : i % requests + 1])

    with running_service(registry.home, params_file) as service:
        address = urlsplit(service.url)
        host, port = str(address.hostname), address.port

        def connect(warm_up: int = 1) -> http.client.HTTPConnection:
            """A connection that has answered ``warm_up`` requests (TCP set-up done).

            Opened right before its figure: the server closes a connection idle for a
            few seconds (uvicorn's keep-alive timeout), e.g. during an in-process block.
            """
            connection = http.client.HTTPConnection(host, port, timeout=60)
            for i in range(warm_up):
                _post(connection, singles[i % requests])
            return connection

        def sender(connection: http.client.HTTPConnection) -> Callable[[int], object]:
            return lambda i: _post(connection, singles[i % requests])

        with closing(connect(warm_up=0)) as client:
            answer = json.loads(_post(client, batch_body))
        _check(answer, version.version, detector.decision_function(batch))
        # Each service figure is taken right beside its in-process twin, so both see
        # about the same load on a shared machine: the latencies in alternating rounds,
        # not call by call, as the server's torch threads keep spinning a moment after
        # each answer and would slow an in-process call made just then.
        _latencies(score_in_process, range(20))  # warm-up
        in_process_parts, served_parts = [], []
        for part in np.array_split(np.arange(requests), LATENCY_ROUNDS):
            in_process_parts.append(_latencies(score_in_process, part))
            with closing(connect(warm_up=5)) as client:
                served_parts.append(_latencies(sender(client), part))
        in_process, served = np.concatenate(in_process_parts), np.concatenate(served_parts)
        in_process_rate = _rate([score_in_process] * concurrency, per_client)
        clients = [connect() for _ in range(concurrency)]
        served_rate = _rate([sender(c) for c in clients], per_client)
        for client in clients:
            client.close()
        in_process_batch = batch_records * _repeat_rate(
            lambda: detector.decision_function(batch), batch_requests
        )
        with closing(connect()) as client:
            served_batch = batch_records * _repeat_rate(
                lambda: _post(client, batch_body), batch_requests
            )

    return ServiceFigures(
        version=version.version,
        requests=requests,
        concurrency=concurrency,
        batch_records=batch_records,
        p50_ms=float(np.percentile(served, 50)),
        p99_ms=float(np.percentile(served, 99)),
        in_process_p50_ms=float(np.percentile(in_process, 50)),
        in_process_p99_ms=float(np.percentile(in_process, 99)),
        requests_per_second=served_rate,
        in_process_calls_per_second=in_process_rate,
        batch_rows_per_second=served_batch,
        in_process_batch_rows_per_second=in_process_batch,
    )


def measure_batch_scoring(
    registry: Registry,
    rows: int,
    chunk_rows: int,
    forward_rows: int = 200_000,
    folder: Path | None = None,
) -> BatchScoringFigures:
    """Generate a ``rows``-row Parquet file, score it in a child, time the bare network.

    The file holds an id column and the production model's features, resampled from the
    version's smoke batch (held-out rows) with a little noise so values do not repeat;
    it is written ``GENERATION_CHUNK_ROWS`` at a time, so generating it stays in bounded
    memory. The child runs :func:`score_file` with as many torch threads as this
    process; its peak RSS covers everything it does (imports, model, chunks, writer).
    The bare forward pass runs the same network on ``forward_rows`` already-scaled rows
    held in memory, in the batches ``decision_function`` uses.

    Args:
        folder: where the input and output files go (a temporary folder by default,
            removed afterwards).
    """
    version = _production(registry)
    detector = AnomalyDetector.load(version.detector_dir)
    smoke = np.load(version.smoke_batch)
    forward_rows = min(forward_rows, rows)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        source, target = Path(scratch) / "batch.parquet", Path(scratch) / "scored.parquet"
        _write_batch(source, smoke, detector.feature_names_, rows)
        file_mib = source.stat().st_size / 2**20
        forward_speed = _bare_forward(detector, _resample(smoke, forward_rows, seed=1))
        result_file = Path(scratch) / "result.json"
        started = time.perf_counter()
        peak_kib = _run_child(
            [
                sys.executable,
                "-c",
                "import sys; from anomalyflow.benchmark.serving import score_in_child; "
                "score_in_child(sys.argv[1:])",
                str(version.detector_dir),
                str(source),
                str(target),
                str(chunk_rows),
                str(torch.get_num_threads()),
                str(result_file),
            ],
            Path(scratch) / "child.log",
        )
        child_seconds = time.perf_counter() - started
        result = json.loads(result_file.read_text())
        output_rows = pq.ParquetFile(target).metadata.num_rows
    return BatchScoringFigures(
        version=version.version,
        rows=rows,
        output_rows=output_rows,
        flagged=int(result["flagged"]),
        chunk_rows=chunk_rows,
        file_mib=file_mib,
        scoring_seconds=float(result["seconds"]),
        child_seconds=child_seconds,
        peak_memory_mib=peak_kib / 1024.0,
        bare_forward_rows=forward_rows,
        bare_forward_rows_per_second=forward_speed,
    )


def score_in_child(argv: Sequence[str]) -> None:
    """The child's side: ``DETECTOR SOURCE TARGET CHUNK_ROWS THREADS RESULT_JSON``."""
    from anomalyflow.scoring import score_file

    detector_dir, source, target, chunk_rows, threads, result_file = argv
    torch.set_num_threads(int(threads))
    detector = AnomalyDetector.load(Path(detector_dir))
    done = score_file(detector, Path(source), Path(target), int(chunk_rows), progress=False)
    Path(result_file).write_text(
        json.dumps({"rows": done.rows, "flagged": done.flagged, "seconds": done.seconds})
    )


def _production(registry: Registry) -> ModelVersion:
    version = registry.production()
    if version is None:
        raise RegistryError(f"no production model in {registry.home}")
    return version


def _resample(smoke: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """``rows`` rows drawn from ``smoke`` with noise of ``JITTER`` times each spread."""
    rng = np.random.default_rng(seed)
    spread = smoke.std(axis=0) + 1e-3
    picked: np.ndarray = smoke[rng.integers(0, len(smoke), rows)].astype(np.float64)
    picked += rng.normal(0.0, JITTER, picked.shape) * spread
    return picked.astype(np.float32)


def _write_batch(path: Path, smoke: np.ndarray, features: tuple[str, ...], rows: int) -> None:
    schema = pa.schema([(ID_COLUMN, pa.int64()), *((name, pa.float64()) for name in features)])
    with pq.ParquetWriter(path, schema) as writer:
        for seed, start in enumerate(range(0, rows, GENERATION_CHUNK_ROWS)):
            count = min(GENERATION_CHUNK_ROWS, rows - start)
            x = _resample(smoke, count, seed=100 + seed).astype(np.float64)
            columns = [pa.array(np.arange(start, start + count, dtype=np.int64))]
            columns += [pa.array(x[:, j]) for j in range(x.shape[1])]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def _bare_forward(detector: AnomalyDetector, rows: np.ndarray) -> float:
    """Rows/s of the network alone on scaled rows already in memory (CPU, no I/O)."""
    assert detector.scaler_ is not None
    network = detector.network().cpu()
    scaled = torch.from_numpy(detector.scaler_.transform(rows))
    with torch.inference_mode():
        network(scaled[:SCORE_BATCH])  # warm-up
        started = time.perf_counter()
        for chunk in scaled.split(SCORE_BATCH):
            network(chunk)
        return len(rows) / (time.perf_counter() - started)


def _run_child(command: list[str], log: Path) -> int:
    """Run ``command`` to completion; its peak RSS in KiB (a failure raises with its log)."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not all
    process.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"batch scoring child failed ({code}): {log.read_text()[-2000:]}")
    return int(usage.ru_maxrss)  # KiB on Linux


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
