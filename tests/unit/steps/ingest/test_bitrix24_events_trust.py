"""Bitrix24 outbound events through the ingest handler: only fresh events, each once.

Trust issue, item 17: every event costs a read of the portal's REST budget (2 requests/s), so an
old event replayed, or one forged with a captured application token and any ``ts``, must not be
taken. ``ts`` is when Bitrix24's queue server sent the event (unix seconds).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from leadflow import clock
from tests.support.webhooks import EVENTS, changed, delivery, ingest

NOW = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    clock.freeze(NOW)


def _sent_at(moment: datetime) -> dict:
    """events/bitrix24/lead_update.json as Bitrix24 would send it at ``moment``."""
    event = delivery(EVENTS / "bitrix24" / "lead_update.json")
    body = re.sub(r"(^|&)ts=\d+", rf"\g<1>ts={int(moment.timestamp())}", event["body"])
    return changed(event, body=body.encode())


def test_item17_a_fresh_event_is_taken_once(env, logs, frozen):
    # Given an event Bitrix24 sent seconds ago
    event = _sent_at(NOW - timedelta(seconds=5))
    # When it arrives, and the same event arrives again (a replay, or a proxy's retry)
    assert ingest(event)["status"] == 200
    clock.advance(timedelta(seconds=30))
    assert ingest(event)["status"] == 200
    # Then one CRM event is on its way to route
    assert len(env.receive("RouteQueue")) == 1


@pytest.mark.parametrize(
    "age", [timedelta(minutes=16), timedelta(hours=3), timedelta(days=20)], ids=["16min", "3h", "20d"]
)
def test_item17_an_old_event_is_refused(env, logs, frozen, age):
    # Given an event sent long ago (captured and replayed, or forged with an old ts)
    answer = ingest(_sent_at(NOW - age))
    # Then it is refused with 403, nothing is queued, and the log says why
    assert answer["status"] == 403
    assert env.receive("RouteQueue") == []
    assert '"reason":"bitrix24 event ts is' in logs.text and "old" in logs.text


def test_item17_an_event_from_the_future_is_refused(env, logs, frozen):
    answer = ingest(_sent_at(NOW + timedelta(minutes=10)))
    assert answer["status"] == 403
    assert env.receive("RouteQueue") == []
    assert "ahead" in logs.text


def test_item17_a_small_clock_skew_and_a_queue_delay_are_tolerated(env, logs, frozen):
    assert ingest(_sent_at(NOW + timedelta(seconds=90)))["status"] == 200
    event = delivery(EVENTS / "bitrix24" / "deal_update.json")
    body = re.sub(r"(^|&)ts=\d+", rf"\g<1>ts={int((NOW - timedelta(minutes=14)).timestamp())}", event["body"])
    assert ingest(changed(event, body=body.encode()))["status"] == 200
    assert len(env.receive("RouteQueue")) == 2
