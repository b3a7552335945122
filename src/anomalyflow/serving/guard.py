"""What a request must bring before the service reads it: a token, and a bounded body.

An ASGI middleware in front of the BentoML app. When the variable that
``serving.api_token_env`` names is set, every route but the health checks and the
metrics needs ``Authorization: Bearer <token>`` (401 otherwise). A body larger than
``serving.max_body_mb`` is refused with 413 before it is held in memory: at once when
its ``Content-Length`` says so, else as soon as the bytes received pass the limit.
The token is read from the environment only, never from ``params.yaml``, which is
committed to git.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
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
            await _refuse(send, 401, "send 'Authorization: Bearer <token>'")
            return
        declared = _header(scope, b"content-length")
        too_large = declared.isdigit() and int(declared) > self.max_body_bytes
        body = await _read_body(receive, 0 if too_large else self.max_body_bytes)
        if too_large or body is None:
            await _refuse(send, 413, self._too_large())
            return
        await self.app(scope, _replay(body, receive), send)

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


async def _refuse(send: Send, status: int, message: str) -> None:
    """Answer ``status`` with ``message`` (BentoML's access log records the request)."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
