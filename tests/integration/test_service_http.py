"""The BentoML service over real HTTP on loopback: scoring, explanations, 4xx, hot swap."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from anomalyflow.registry.store import Registry
from anomalyflow.serving.server import RunningService, running_service, smoke_test
from tests.conftest import decision_record, make_blobs

EMPTY_PARAMS = "params.yaml"  # an empty file: serving defaults, at most 10,000 records
ROWS = make_blobs(rows=200, seed=3)[0]


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, saved_detectors: list[Path]
) -> Iterator[tuple[RunningService, Registry, list[str]]]:
    folder = tmp_path_factory.mktemp("registry")
    params = folder / EMPTY_PARAMS
    params.write_text("")
    registry = Registry(folder / "bentoml")
    versions = [registry.register(f, decision_record(), ROWS[:16]).version for f in saved_detectors]
    registry.promote(versions[0], lambda v: smoke_test(v, registry.home, params))
    with running_service(registry.home, params) as service:
        yield service, registry, versions


def _records(rows: np.ndarray, names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [dict(zip(names, map(float, row), strict=True)) for row in rows]


def _post_raw(service: RunningService, route: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(
        service.url + route, data=body, headers={"Content-Type": "application/json"}
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

    scored = service.post("/score", {"records": records})
    expected = model.decision_function(ROWS)
    served_scores = np.array([r["score"] for r in scored["results"]])
    np.testing.assert_allclose(served_scores, expected, rtol=1e-6)
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
        ('{"records": [{"x0": 1.0}]}', 400, "records[0]: missing feature 'x1'"),
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
    assert message in text


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
