"""The BentoML service over real HTTP on loopback: scoring, explanations, 4xx, hot swap,
its token and body limit, and the verified models it serves."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from anomalyflow.detector import AnomalyDetector
from anomalyflow.integrity import IntegrityError
from anomalyflow.pipeline.register import with_scoring_graph
from anomalyflow.registry.store import ModelVersion, Registry
from anomalyflow.serving.graph import ATOL, GRAPH_FILE, RTOL
from anomalyflow.serving.server import (
    RunningService,
    SmokeTestFailed,
    free_port,
    running_service,
    service_command,
    service_environment,
    smoke_test,
)
from tests.conftest import decision_record, make_blobs

# An empty file: serving defaults, at most 10,000 records and 8 MB a request, and the
# token in $ANOMALYFLOW_API_TOKEN, which the module's service is started with.
EMPTY_PARAMS = "params.yaml"
TOKEN = {"ANOMALYFLOW_API_TOKEN": "integration-token"}
ROWS = make_blobs(rows=200, seed=3)[0]


@pytest.fixture(scope="module")
def graphed(
    tmp_path_factory: pytest.TempPathFactory, saved_detectors: list[Path]
) -> tuple[Path, dict[str, Any]]:
    """The first detector with its ONNX scoring graph, and the record naming its hash."""
    folder = tmp_path_factory.mktemp("graphed") / "model"
    shutil.copytree(saved_detectors[0], folder)
    return folder, with_scoring_graph(folder, decision_record(), ROWS[:16])


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    saved_detectors: list[Path],
    graphed: tuple[Path, dict[str, Any]],
) -> Iterator[tuple[RunningService, Registry, list[str]]]:
    """Production scores through its ONNX graph; the second version has none (torch)."""
    folder = tmp_path_factory.mktemp("registry")
    params = folder / EMPTY_PARAMS
    params.write_text("")
    registry = Registry(folder / "bentoml")
    versions = [
        registry.register(*graphed, ROWS[:16]).version,
        registry.register(saved_detectors[1], decision_record(), ROWS[:16]).version,
    ]
    registry.promote(versions[0], lambda v: smoke_test(v, registry.home, params))
    with running_service(
        registry.home, params, extra_env=TOKEN, model_name=registry.name
    ) as service:
        assert service.token == TOKEN["ANOMALYFLOW_API_TOKEN"]
        yield service, registry, versions


def _records(rows: np.ndarray, names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [dict(zip(names, map(float, row), strict=True)) for row in rows]


def _post_raw(
    service: RunningService, route: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    request = urllib.request.Request(
        service.url + route, data=body, headers=service.headers() if headers is None else headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_scores_and_explanations_match_the_in_process_model(
    served: tuple[RunningService, Registry, list[str]],
) -> None:
    service, registry, versions = served
    model = registry.load(versions[0])
    records = _records(ROWS, model.feature_names_)

    assert (registry.get(versions[0]).detector_dir / GRAPH_FILE).exists()
    scored = service.post("/score", {"records": records})
    expected = model.decision_function(ROWS)  # torch; the service runs the ONNX graph
    served_scores = np.array([r["score"] for r in scored["results"]])
    np.testing.assert_allclose(served_scores, expected, rtol=RTOL, atol=ATOL)
    assert [r["is_anomaly"] for r in scored["results"]] == list(expected >= model.threshold_)
    assert {r["model_version"] for r in scored["results"]} == {versions[0]}

    explained = service.post("/explain", {"records": records[:5]})
    contributions = model.feature_contributions(ROWS[:5])
    for result, row in zip(explained["results"], contributions, strict=True):
        top = [f["feature"] for f in result["top_features"]]
        assert len(top) == 3
        assert top == [model.feature_names_[i] for i in row.argsort()[::-1][:3]]

    metadata = service.post("/metadata", {})
    assert metadata == {
        "features": list(model.feature_names_),
        "model_version": versions[0],
        "threshold": model.threshold_,
    }
    for probe in ("/readyz", "/livez", "/metrics"):
        with urllib.request.urlopen(service.url + probe, timeout=10) as response:
            assert response.status == 200
    with urllib.request.urlopen(service.url + "/metrics", timeout=10) as response:
        assert b"bentoml_service_request" in response.read()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ('{"records": [{"x0": 1.0}]}', 400, "records[0].x1: missing feature"),
        ('{"records": [ROW_WITH_X2="abc"]}', 400, "records[0].x2: expected a number, got str"),
        ('{"records": [ROW_WITH_X2=true]}', 400, "records[0].x2: expected a number, got bool"),
        ('{"records": [ROW_WITH_X2=null]}', 400, "records[0].x2: expected a number"),
        ('{"records": [ROW_WITH_X2=NaN]}', 400, "records[0].x2: not a finite number"),
        ('{"records": [ROW_WITH_X2=1e999]}', 400, "records[0].x2: not a finite number"),
        ('{"records": [ROW_WITH_X2=1e300]}', 400, "records[0].x2: not a finite number"),
        ('{"records": [ROW_WITH_X2=' + "9" * 400 + "]}", 400, "records[0].x2"),
        ('{"records": []}', 400, "'records' is empty"),
        ('{"records": "x0"}', 400, "records"),
        ("{}", 400, "records"),
        ("not json", 400, ""),
        ("TOO_MANY", 413, "at most 10000 per request"),
    ],
)
def test_bad_requests_get_4xx_naming_the_field(
    served: tuple[RunningService, Registry, list[str]], body: str, status: int, message: str
) -> None:
    service, _, _ = served
    row = {f"x{i}": 0.5 for i in range(6)}
    if body == "TOO_MANY":
        body = json.dumps({"records": [row] * 10_001})
    elif "ROW_WITH_X2=" in body:
        value = body.split("ROW_WITH_X2=")[1].split("]")[0]
        fields = ", ".join(f'"{k}": {value if k == "x2" else v}' for k, v in row.items())
        body = '{"records": [{' + fields + "}]}"
    code, text = _post_raw(service, "/score", body.encode())
    assert code == status, text
    answer = json.loads(text)  # one shape for every 4xx
    assert set(answer) == {"error", "problems"} and message in answer["error"], answer
    assert all(set(p) == {"record", "field", "problem"} for p in answer["problems"])


def test_one_answer_lists_every_bad_field_of_every_record(
    served: tuple[RunningService, Registry, list[str]],
) -> None:
    service, _, _ = served
    good = {f"x{i}": 0.5 for i in range(6)}
    records = [good | {"x0": "a", "x1": None}, good, good | {"x4": True}, {"x5": 1.0}]
    code, text = _post_raw(service, "/score", json.dumps({"records": records}).encode())
    assert code == 400
    problems = {(p["record"], p["field"]) for p in json.loads(text)["problems"]}
    assert problems == {(0, "x0"), (0, "x1"), (2, "x4")} | {(3, f"x{i}") for i in range(5)}
    code, text = _post_raw(service, "/no-such-route", b"{}")
    assert code == 404 and set(json.loads(text)) == {"error", "problems"}


def test_the_api_documents_every_feature_as_a_required_number_with_an_example(
    served: tuple[RunningService, Registry, list[str]],
) -> None:
    service, _, _ = served
    request = urllib.request.Request(service.url + "/docs.json", headers=service.headers())
    with urllib.request.urlopen(request, timeout=10) as response:
        schemas = json.loads(response.read())["components"]["schemas"]
    record = schemas["Record"]
    features = [f"x{i}" for i in range(6)]
    assert list(record["properties"]) == features and record["required"] == features
    examples = ROWS[0].astype(float).tolist()  # the smoke-test rows kept with the version
    for name, example in zip(features, examples, strict=True):
        assert record["properties"][name]["type"] == "number"
        assert record["properties"][name]["examples"] == [example]


def test_promotion_while_serving_swaps_the_model_without_dropping_requests(
    served: tuple[RunningService, Registry, list[str]],
) -> None:
    service, registry, versions = served
    names = registry.load(versions[0]).feature_names_
    payload = {"records": _records(ROWS[:20], names)}
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            try:
                seen.append(service.post("/score", payload)["model_version"])
            except BaseException as error:  # any failed request fails the test
                errors.append(error)

    clients = [threading.Thread(target=traffic) for _ in range(2)]
    for client in clients:
        client.start()
    try:
        params = registry.home.parent / EMPTY_PARAMS
        registry.promote(versions[1], lambda v: smoke_test(v, registry.home, params))
        deadline = threading.Event()
        for _ in range(50):  # the next requests after the commit see the new version
            if seen and seen[-1] == versions[1]:
                break
            deadline.wait(0.1)
    finally:
        stop.set()
        for client in clients:
            client.join()

    assert not errors, errors[:3]
    assert seen[0] == versions[0] and seen[-1] == versions[1]
    new = registry.load(versions[1]).decision_function(ROWS[:20])
    served_scores = [r["score"] for r in service.post("/score", payload)["results"]]
    np.testing.assert_allclose(served_scores, new, rtol=1e-6)
    registry.rollback()
    assert service.post("/metadata", {})["model_version"] == versions[0]


def test_the_token_is_required_except_for_health_checks_and_metrics(
    served: tuple[RunningService, Registry, list[str]],
) -> None:
    service, _, _ = served
    json_only = {"Content-Type": "application/json"}
    for route, body in (("/score", b'{"records": []}'), ("/explain", b"{}"), ("/metadata", b"{}")):
        for headers in (json_only, json_only | {"Authorization": "Bearer wrong-token"}):
            assert _post_raw(service, route, body, headers)[0] == 401
    assert _post_raw(service, "/metadata", b"{}")[0] == 200  # with the token
    for probe in ("/livez", "/readyz", "/metrics"):
        with urllib.request.urlopen(service.url + probe, timeout=10) as response:
            assert response.status == 200


def test_a_body_over_serving_max_body_mb_is_413(
    served: tuple[RunningService, Registry, list[str]],
) -> None:
    service, _, _ = served
    body = b'{"records": [' + b" " * (9 << 20) + b"]}"  # 9 MB of nothing: over the 8 MB
    code, text = _post_raw(service, "/score", body)
    assert code == 413 and "serving.max_body_mb" in text
    assert _post_raw(service, "/metadata", b"{}")[0] == 200


def test_a_400_is_one_line_in_the_service_log_without_a_traceback(
    served: tuple[RunningService, Registry, list[str]],
) -> None:
    service, _, _ = served
    assert _post_raw(service, "/score", b'{"records": [{"x0": "one"}]}')[0] == 400
    assert _post_raw(service, "/score", b"{}")[0] == 400
    log = _wait_for(service, "POST /score answered 400: records: Field required")
    assert "answered 400: records[0].x0: expected a number" in log
    assert "Traceback" not in log


def _wait_for(service: RunningService, text: str, seconds: float = 10.0) -> str:
    """The service log once it holds ``text`` (a worker's lines arrive a little later)."""
    deadline = time.monotonic() + seconds
    while text not in (log := service.output()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert text in log, log[-3000:]
    return log


def _stored_copy(registry: Registry, detector: Path) -> ModelVersion:
    return registry.register(detector, decision_record(), ROWS[:16])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _never(version: ModelVersion) -> dict[str, Any]:
    raise AssertionError(f"the smoke test ran for {version.version}")


def test_a_corrupted_version_is_refused_at_promotion_and_never_served(
    served: tuple[RunningService, Registry, list[str]], saved_detectors: list[Path]
) -> None:
    service, registry, _ = served
    production = registry.state().production
    corrupted = _stored_copy(registry, saved_detectors[1])
    _flip_a_byte(corrupted.detector_dir / "weights.safetensors")
    with pytest.raises(IntegrityError, match=f"version '{corrupted.version}'"):
        registry.promote(corrupted.version, _never)

    def corrupt_after_the_check(version: ModelVersion) -> dict[str, Any]:
        _flip_a_byte(version.detector_dir / "weights.safetensors")  # after promote checked
        return {"passed": True}

    late = _stored_copy(registry, saved_detectors[1])
    registry.promote(late.version, corrupt_after_the_check)
    for _ in range(3):  # the running service keeps its verified model, and says so once
        assert service.post("/metadata", {})["model_version"] == production
    log = _wait_for(service, f"version '{late.version}' fails verification")
    assert log.count(f"still serving {production}") == 1 and "Traceback" not in log

    registry.rollback(reason="corrupted weights")
    assert service.post("/metadata", {})["model_version"] == production


@pytest.mark.parametrize("damaged", ["weights.safetensors", GRAPH_FILE, "another version's"])
def test_a_service_asked_to_serve_a_corrupted_version_exits_at_once_in_one_line(
    served: tuple[RunningService, Registry, list[str]],
    graphed: tuple[Path, dict[str, Any]],
    saved_detectors: list[Path],
    damaged: str,
) -> None:
    _, registry, _ = served
    corrupted = registry.register(*graphed, ROWS[:16])
    if damaged == "another version's":  # every file checks out against its own record
        other = _stored_copy(registry, saved_detectors[1]).path
        shutil.rmtree(corrupted.detector_dir)
        shutil.copytree(other / "detector", corrupted.detector_dir)
        shutil.copyfile(other / "decision.json", corrupted.path / "decision.json")
    else:
        path = corrupted.detector_dir / damaged
        path.write_bytes(path.read_bytes()[:1000])  # truncated: it once crash-looped
    params = registry.home.parent / EMPTY_PARAMS
    started = subprocess.run(
        service_command("127.0.0.1", free_port()),
        env=service_environment(registry.home, params, corrupted.version, model_name=registry.name),
        capture_output=True,
        timeout=90,  # a crash loop never exits
        check=False,
    )
    lines = started.stderr.decode().strip().splitlines()
    assert started.returncode == 2, lines[-5:]
    assert lines[-1].startswith("anomalyflow serve: refused to start: ")
    assert f"version '{corrupted.version}'" in lines[-1]
    assert b"Traceback" not in started.stdout + started.stderr


def test_a_nan_scoring_version_fails_the_smoke_test_cleanly(
    served: tuple[RunningService, Registry, list[str]],
    saved_detectors: list[Path],
    tmp_path: Path,
) -> None:
    service, registry, _ = served
    production = registry.state().production
    detector = AnomalyDetector.load(saved_detectors[1])
    assert detector.scorer_ is not None
    with torch.no_grad():
        for parameter in detector.scorer_.parameters():
            parameter.fill_(float("nan"))
    detector.save(tmp_path / "nan")  # saved properly: every recorded hash matches
    nan = _stored_copy(registry, tmp_path / "nan").version
    params = registry.home.parent / EMPTY_PARAMS

    with pytest.raises(SmokeTestFailed, match=f"'{nan}' scores .* as NaN or infinite"):
        registry.promote(nan, lambda v: smoke_test(v, registry.home, params))
    assert registry.state().production == production
    assert service.post("/metadata", {})["model_version"] == production
