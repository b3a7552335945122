"""The request guard in front of the service: a bearer token when one is set, and a
body size limit, checked before the service reads anything."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from anomalyflow.serving.guard import RequestGuard, TokenMisconfigured, api_token

LIMIT = 1000


class App:
    """The service behind the guard: records the body it was handed."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(
    guard: RequestGuard,
    path: str,
    chunks: list[bytes],
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, int]:
    """The status and body answered, and how many chunks the guard read."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []
    read = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return messages[read - 1] if read <= len(messages) else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), read


def test_without_a_token_set_every_route_is_open_and_bodies_reach_the_service() -> None:
    app = App()
    guard = RequestGuard(app, LIMIT, token=None)
    assert call(guard, "/score", [b'{"records":', b" []}"])[0] == 200
    assert app.bodies == [b'{"records": []}']


def test_with_a_token_set_only_health_and_metrics_are_open() -> None:
    app = App()
    guard = RequestGuard(app, LIMIT, token="s3cret")
    for route in ("/score", "/explain", "/metadata", "/", "/docs.json"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            status, body, _ = call(guard, route, [b"{}"], headers)
            assert status == 401 and "Bearer" in json.loads(body)["error"]
        assert call(guard, route, [b"{}"], {"Authorization": "Bearer s3cret"})[0] == 200
    for route in ("/livez", "/readyz", "/healthz", "/metrics"):
        assert call(guard, route, [b""])[0] == 200


def test_a_body_over_the_limit_is_413_and_never_reaches_the_service() -> None:
    app = App()
    guard = RequestGuard(app, LIMIT, token=None)
    declared = {"Content-Length": str(LIMIT + 1)}
    status, body, _ = call(guard, "/score", [b"x" * (LIMIT + 1)], declared)
    assert status == 413 and "serving.max_body_mb" in json.loads(body)["error"]
    chunks = [b"x" * 400] * 5  # no Content-Length: refused once past the limit
    status, _, read = call(guard, "/score", chunks)
    assert status == 413 and read == len(chunks)  # read to the end, so the client sees it
    assert app.bodies == []
    assert call(guard, "/score", [b"x" * LIMIT], {"Content-Length": str(LIMIT)})[0] == 200


def test_the_token_comes_from_the_environment_and_an_empty_one_is_refused() -> None:
    assert api_token("TOKEN_VAR", {}) is None
    assert api_token("TOKEN_VAR", {"TOKEN_VAR": "abc"}) == "abc"
    with pytest.raises(TokenMisconfigured, match=r"\$TOKEN_VAR is set but empty"):
        api_token("TOKEN_VAR", {"TOKEN_VAR": "  "})


def test_every_4xx_leaves_in_one_shape_listing_each_problem() -> None:
    import pydantic

    from anomalyflow.serving.guard import reshaped

    class Body(pydantic.BaseModel):
        records: list[dict[str, Any]]

    try:  # what BentoML answers when a body does not fit the API's signature
        Body.model_validate({"records": [{"x0": 1}, "x", 3]})
    except pydantic.ValidationError as error:
        detail = error.errors(include_context=False, include_input=False)
    shaped = json.loads(reshaped(400, json.dumps({"error": "2 errors", "detail": detail}).encode()))
    assert [(p["record"], p["field"]) for p in shaped["problems"]] == [(1, None), (2, None)]
    assert shaped["error"].startswith("records[1]: ")

    for body in (b'[{"error": "bad json"}]', b"Not Found", b'{"detail": "Not Found"}'):
        answer = json.loads(reshaped(404, body))
        assert set(answer) == {"error", "problems"} and answer["error"]
    ours = b'{"error": "x", "problems": []}'
    assert reshaped(400, ours) == ours
