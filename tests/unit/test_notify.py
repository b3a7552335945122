"""Notifications reach a receiver on loopback, and a dead receiver never fails a run."""

from __future__ import annotations

import pytest

from anomalyflow.notify import notify
from anomalyflow.params import NotifyParams


def test_an_event_arrives_as_one_json_object(
    webhook: tuple[str, list[dict[str, object]]],
) -> None:
    url, received = webhook
    assert notify(NotifyParams(webhook_url=url), "promoted", version="abc123", reason="drift")
    assert len(received) == 1
    assert received[0]["event"] == "promoted" and received[0]["version"] == "abc123"


def test_a_dead_receiver_is_logged_and_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    dead = NotifyParams(webhook_url="http://127.0.0.1:9/hook", timeout_seconds=1.0)
    assert not notify(dead, "rollback", version="abc123")
    assert "rollback" in caplog.text


def test_no_url_sends_nothing() -> None:
    assert not notify(NotifyParams(), "promoted")
