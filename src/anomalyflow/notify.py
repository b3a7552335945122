"""Notifications: one JSON event POSTed to ``notify.webhook_url`` per thing people act on.

A notification that fails is logged and never fails the run: the run's outcome is in
the registry, the decision record and the run summary whatever happens to the webhook.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from datetime import UTC, datetime
from typing import Any

from anomalyflow.params import NotifyParams

log = logging.getLogger(__name__)


def notify(settings: NotifyParams, event: str, **details: Any) -> bool:
    """POST ``{"event": ..., "at": ..., **details}``; True when the receiver took it."""
    if not settings.webhook_url:
        return False
    body = {"event": event, "at": datetime.now(UTC).isoformat(timespec="seconds")} | details
    request = urllib.request.Request(
        settings.webhook_url,
        data=json.dumps(body, default=str).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout_seconds) as answer:
            return bool(200 <= answer.status < 300)
    except (OSError, ValueError) as error:  # unreachable, refused, timed out, bad URL
        log.warning("notification '%s' to %s failed: %s", event, settings.webhook_url, error)
        return False
