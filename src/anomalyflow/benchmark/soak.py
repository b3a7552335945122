"""Soak (issue 14): clients score without pause while production changes under them.

``soak`` starts the service as a user does (``anomalyflow serve``, on 127.0.0.1), lets
``clients`` threads send a mix of single-record and batch ``/score`` requests over
kept-alive connections for ``seconds``, and meanwhile promotes a version at a third of
the time and rolls back at two thirds with the ``anomalyflow promote``/``rollback``
commands, so the registry ends where it began. Every answer must be a 200 from one of
the two versions in play; anything else (a status, a dropped connection, another
version) counts as an error. The target is none.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anomalyflow.benchmark.serving import resample
from anomalyflow.registry.model_version import feature_names
from anomalyflow.registry.store import Registry, RegistryError

HOST = "127.0.0.1"
READY_TIMEOUT_S = 120.0
MAX_ERROR_SAMPLES = 5  # kept verbatim in the figures; the rest only counted


@dataclass(frozen=True)
class SoakFigures:
    """What the clients saw, and the registry changes made while they were sending."""

    clients: int
    seconds: float  # measured, from the first request sent to the last answer
    batch_every: int  # every n-th request of a client is a batch
    batch_records: int
    requests: int
    singles: int
    batches: int
    errors: int
    error_samples: list[str]
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    single_p50_ms: float
    single_p99_ms: float
    batch_p50_ms: float
    batch_p99_ms: float
    production: str  # before and after the soak
    promoted: str  # production between the promotion and the rollback
    answers_by_version: dict[str, int]
    changes: list[dict[str, object]]  # promote / rollback: when (s), how long, exit code


@dataclass
class _Tally:
    """One client's record, merged when the soak ends (no lock in the hot loop)."""

    single_ms: list[float] = field(default_factory=list)
    batch_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Bodies:
    singles: list[bytes]
    batch: bytes


def soak(
    registry: Registry,
    params_file: Path,
    clients: int = 8,
    seconds: float = 60.0,
    batch_every: int = 10,
    batch_records: int = 100,
    target: str | None = None,
    token: str | None = None,
) -> SoakFigures:
    """Run the soak on ``registry``'s production; ``target`` is promoted mid-way.

    Args:
        registry: the project's registry; its production is served from the start.
        params_file: the params file the service and the commands read.
        clients: client threads, each on its own kept-alive connection.
        seconds: how long the clients send.
        batch_every: each client's every n-th request is a batch, the rest single rows.
        batch_records: records per batch request.
        target: the version promoted at a third of the time; default: the previous
            production, the version a rollback would restore.
        token: the bearer token, where the service asks for one.
    """
    production = registry.production()
    if production is None:
        raise RegistryError(f"no production model in {registry.home}: nothing to serve")
    promoted = registry.resolve(target or "previous")
    if promoted == production.version:
        raise RegistryError(f"'{promoted}' is production already: name another version")
    in_play = {production.version, promoted}
    bodies = _bodies(production.smoke_batch, feature_names(production), batch_records)
    tallies = [_Tally() for _ in range(clients)]
    with _served(params_file) as (host, port):
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=_client, args=(host, port, bodies, (batch_every, token), stop, t)
            )
            for t in tallies
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        try:  # a change that fails stops the clients too, or they would retry forever
            rollback = ["rollback", "--reason", "soak benchmark"]
            if not production.gate_passed:  # it was forced into production: so is its return
                rollback = ["rollback", "--force", "--reason", "soak benchmark: back to the start"]
            changes = _change_registry(params_file, promoted, rollback, seconds, started)
            time.sleep(max(0.0, started + seconds - time.perf_counter()))
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        elapsed = time.perf_counter() - started
    figures = _figures(tallies, elapsed, (clients, batch_every, batch_records), changes)
    strangers = {v: n for v, n in figures["answers_by_version"].items() if v not in in_play}
    if strangers:  # an answer from a version never in play is as wrong as a 500
        figures["errors"] += sum(strangers.values())
        figures["error_samples"].append(f"answers from versions not in play: {strangers}")
    return SoakFigures(production=production.version, promoted=promoted, **figures)


def _bodies(smoke_batch: Path, names: tuple[str, ...], batch_records: int) -> _Bodies:
    """Request bodies from the production's smoke rows, jittered: 200 singles, one batch."""
    rows = resample(np.load(smoke_batch), max(200, batch_records), seed=0)

    def body(part: np.ndarray) -> bytes:
        records = [dict(zip(names, map(float, row), strict=True)) for row in part]
        return json.dumps({"records": records}).encode()

    return _Bodies([body(rows[i : i + 1]) for i in range(200)], body(rows[:batch_records]))


def _client(
    host: str,
    port: int,
    bodies: _Bodies,
    mix: tuple[int, str | None],
    stop: threading.Event,
    tally: _Tally,
) -> None:
    """Send until ``stop``, one request after another; reconnect after any failure.

    ``mix`` is (every n-th request a batch, the bearer token or None).
    """
    batch_every, token = mix
    connection = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    i = 0
    while not stop.is_set():
        batch = i % batch_every == batch_every - 1
        body = bodies.batch if batch else bodies.singles[i % len(bodies.singles)]
        began = time.perf_counter()
        try:
            connection.request("POST", "/score", body, headers)
            response = connection.getresponse()
            answer = response.read()
            elapsed_ms = (time.perf_counter() - began) * 1000.0
            if response.status != 200:
                raise RuntimeError(f"/score answered {response.status}: {answer[:200]!r}")
            version = str(json.loads(answer)["model_version"])
            tally.versions[version] = tally.versions.get(version, 0) + 1
            (tally.batch_ms if batch else tally.single_ms).append(elapsed_ms)
        except (OSError, RuntimeError, ValueError, KeyError, http.client.HTTPException) as error:
            tally.errors.append(f"{type(error).__name__}: {error}")
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=60)
        i += 1
    connection.close()


def _change_registry(
    params_file: Path, promoted: str, rollback: list[str], seconds: float, started: float
) -> list[dict[str, object]]:
    """Promote ``promoted`` at a third of the soak, run ``rollback`` at two thirds (the
    CLI, as a person would)."""
    changes: list[dict[str, object]] = []
    for share, command in (
        (1 / 3, ["promote", promoted, "--reason", "soak benchmark"]),
        (2 / 3, rollback),
    ):
        time.sleep(max(0.0, started + share * seconds - time.perf_counter()))
        at = time.perf_counter()
        done = _anomalyflow([*command, "--params", str(params_file)])
        if done.returncode != 0:
            lines = [line.removeprefix("error: ") for line in done.stderr.splitlines() if line]
            said = "; ".join(lines)  # the refusal stays one line
            raise RegistryError(f"`anomalyflow {command[0]}` failed mid-soak: {said}")
        changes.append(
            {
                "action": command[0],
                "at_s": round(at - started, 1),
                "took_s": round(time.perf_counter() - at, 1),
            }
        )
    return changes


def _anomalyflow(args: list[str]) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("anomalyflow")), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@contextmanager
def _served(params_file: Path) -> Iterator[tuple[str, int]]:
    """``anomalyflow serve`` on a free loopback port, ready; stopped (SIGTERM) on exit."""
    with closing(socket.socket()) as probe:
        probe.bind((HOST, 0))
        port = int(probe.getsockname()[1])
    command = ["serve", "--host", HOST, "--port", str(port), "--params", str(params_file)]
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("anomalyflow")), *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(HOST, port, server)
        yield HOST, port
    finally:
        server.terminate()  # serve exec'd BentoML: this stops it and its workers
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_ready(host: str, port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RegistryError(f"`anomalyflow serve` exited {server.returncode} at start")
        try:
            with closing(http.client.HTTPConnection(host, port, timeout=2)) as probe:
                probe.request("GET", "/readyz")
                if probe.getresponse().status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RegistryError(f"the service was not ready within {READY_TIMEOUT_S:g} s")


def _figures(
    tallies: list[_Tally],
    elapsed: float,
    load: tuple[int, int, int],
    changes: list[dict[str, object]],
) -> dict[str, Any]:
    """The clients' records merged into the figures (all but the versions in play)."""
    singles = np.array([ms for t in tallies for ms in t.single_ms])
    batches = np.array([ms for t in tallies for ms in t.batch_ms])
    both = np.concatenate([singles, batches])
    errors = [e for t in tallies for e in t.errors]
    versions: dict[str, int] = {}
    for tally in tallies:
        for version, count in tally.versions.items():
            versions[version] = versions.get(version, 0) + count
    clients, batch_every, batch_records = load
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "batch_every": batch_every,
        "batch_records": batch_records,
        "requests": len(both) + len(errors),
        "singles": len(singles),
        "batches": len(batches),
        "errors": len(errors),
        "error_samples": errors[:MAX_ERROR_SAMPLES],
        "requests_per_second": (len(both) + len(errors)) / elapsed,
        "p50_ms": _percentile(both, 50),
        "p99_ms": _percentile(both, 99),
        "single_p50_ms": _percentile(singles, 50),
        "single_p99_ms": _percentile(singles, 99),
        "batch_p50_ms": _percentile(batches, 50),
        "batch_p99_ms": _percentile(batches, 99),
        "answers_by_version": versions,
        "changes": changes,
    }


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")
