"""What a request must bring before the service reads it: a token, and a bounded body.

An ASGI middleware in front of the BentoML app. When the variable that
``serving.api_token_env`` names is set, every route but the health checks and the
metrics needs ``Authorization: Bearer <token>`` (401 otherwise). A body larger than
``serving.max_body_mb`` is refused with 413 before it is held in memory: at once when
its ``Content-Length`` says so, else as soon as the bytes received pass the limit.
The token is read from the environment only, never from ``params.yaml``, which is
committed to git.

It also gives every 4xx one shape, ``{"error": summary, "problems": [{"record": i,
"field": name, "problem": text}, ...]}``: the service's own refusals answer in it, and the
others are rewritten on their way out (BentoML's answer to a body that does not fit the
API's signature, with pydantic's errors; its ``[{"error": ...}]``; Starlette's 404/405).
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from http import HTTPStatus
from typing import Any

from anomalyflow.errors import Refusal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# Open to anyone, token or not: orchestrators probe these, Prometheus scrapes /metrics.
OPEN_ROUTES = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
MEGABYTE = 1 << 20
# A refused body is read and dropped up to this much before the answer: a client still
# sending when the server answers and closes sees a reset connection, not the 401/413.
DRAIN_BYTES = 64 * MEGABYTE


class TokenMisconfigured(Refusal):
    """The token variable is set, but to nothing a client could send."""


def api_token(variable: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The bearer token from ``$variable``; None when it is unset (no token needed).

    A variable set to blanks is refused rather than read as "no token": whoever set it
    meant to protect the service.
    """
    token = environ.get(variable)
    if token is None:
        return None
    if not token.strip():
        raise TokenMisconfigured(
            f"${variable} is set but empty: set it to the token clients must send, "
            "or unset it to serve without one"
        )
    return token


class RequestGuard:
    """ASGI middleware: the bearer token when one is set, and the body size limit."""

    def __init__(self, app: App, max_body_bytes: int, token: str | None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._expected = f"Bearer {token}".encode() if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_ROUTES:
            await self.app(scope, receive, send)
            return
        if self._expected is not None and not hmac.compare_digest(
            _header(scope, b"authorization"), self._expected
        ):
            await _read_body(receive, 0)
            await _refuse(send, 401, "send 'Authorization: Bearer <token>'", "Authorization")
            return
        declared = _header(scope, b"content-length")
        too_large = declared.isdigit() and int(declared) > self.max_body_bytes
        body = await _read_body(receive, 0 if too_large else self.max_body_bytes)
        if too_large or body is None:
            await _refuse(send, 413, self._too_large(), "body")
            return
        await self.app(scope, _replay(body, receive), one_error_shape(send))

    def _too_large(self) -> str:
        return (
            f"the request body is larger than {self.max_body_bytes / MEGABYTE:g} MB "
            "(serving.max_body_mb); send fewer records a request"
        )


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return b""


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None when it passes ``limit`` bytes.

    A body past the limit is read on and dropped (up to ``DRAIN_BYTES`` more), so the
    client gets to read the answer. A client that went away ends the body where it
    stopped; the app finds out itself.
    """
    chunks: list[bytes] = []
    size = 0
    while size <= limit + DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if size <= limit else None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then the client's own."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _refuse(send: Send, status: int, message: str, field: str) -> None:
    """Answer ``status`` with ``message`` (BentoML's access log records the request)."""
    problem = {"record": None, "field": field, "problem": message}
    body = json.dumps({"error": message, "problems": [problem]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def one_error_shape(send: Send) -> Send:
    """``send``, with any 4xx answer not in the service's shape rewritten into it."""
    held: dict[str, Any] = {}

    async def shaped(message: Message) -> None:
        if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
            held.update(start=message, body=b"")
            return
        if "start" not in held or message["type"] != "http.response.body":
            await send(message)
            return
        held["body"] += message.get("body", b"")
        if message.get("more_body", False):
            return
        start = held.pop("start")
        body = reshaped(start["status"], held.pop("body"))
        kept = [(k, v) for k, v in start.get("headers", []) if k.lower() not in _REWRITTEN]
        headers = [*kept, (b"content-type", b"application/json")]
        headers.append((b"content-length", b"%d" % len(body)))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return shaped


_REWRITTEN = (b"content-length", b"content-type")


def reshaped(status: int, body: bytes) -> bytes:
    """A 4xx body in the one shape; a body already in it is kept as it is."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = body.decode(errors="replace").strip()
    if isinstance(answer, dict) and "problems" in answer:
        return body
    if isinstance(answer, dict) and isinstance(answer.get("detail"), list):  # pydantic's
        problems = [_from_pydantic(error) for error in answer["detail"]]
    else:
        if isinstance(answer, list) and answer and isinstance(answer[0], dict):
            answer = answer[0]  # BentoML wraps an exception's message in a list
        if isinstance(answer, dict):
            answer = answer.get("error") or answer.get("detail") or ""
        text = str(answer) or HTTPStatus(status).phrase
        problems = [{"record": None, "field": None, "problem": text}]
    summary = _where(problems[0]) + problems[0]["problem"]
    if len(problems) > 1:
        summary += f" (and {len(problems) - 1} more problems)"
    return json.dumps({"error": summary, "problems": problems}).encode()


def _from_pydantic(error: Mapping[str, Any]) -> dict[str, Any]:
    """Pydantic's ``{"loc": ("records", 2, "x0"), "msg": ...}`` as a problem."""
    location = list(error.get("loc", ()))
    indices = [i for i, part in enumerate(location) if isinstance(part, int)]
    record = location[indices[0]] if indices else None
    inside = location[indices[0] + 1 :] if indices else location  # the field in the record
    field = ".".join(str(part) for part in inside) or None
    return {"record": record, "field": field, "problem": str(error.get("msg", "invalid"))}


def _where(problem: Mapping[str, Any]) -> str:
    record, field = problem["record"], problem["field"]
    if record is not None:
        return f"records[{record}]{'.' + field if field else ''}: "
    return f"'{field}': " if field else ""
