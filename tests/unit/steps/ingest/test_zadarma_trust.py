"""Zadarma notifications through the ingest handler: a captured request cannot be replayed.

Trust issue, item 12: Zadarma's ``Signature`` covers ``caller_id``, ``called_did`` and
``call_start`` only — the same string for NOTIFY_START and NOTIFY_END — so ``pbx_call_id``,
``event`` and ``disposition`` can be changed at will in a captured request. Each missed call is
a lead and an SMS to the caller: one captured request must make at most the one lead its call made.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from leadflow import clock
from leadflow.settings import reset_caches
from tests.support.webhooks import SECRETS, ingest, post

NOW = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)
MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture
def frozen():
    clock.freeze(NOW)


def _signed(fields: dict[str, str], secret: str = SECRETS["CALL_SECRET"]) -> str:
    """Zadarma's documented Signature: base64 of the hex HMAC-SHA1 of caller_id.called_did.call_start."""
    string = fields["caller_id"] + fields["called_did"] + fields["call_start"]
    return base64.b64encode(
        hmac.new(secret.encode(), string.encode(), hashlib.sha1).hexdigest().encode()
    ).decode()


def _notify(event: str, started: datetime, **extra: str) -> dict[str, str]:
    fields = {
        "event": event,
        "call_start": started.astimezone(MOSCOW).strftime("%Y-%m-%d %H:%M:%S"),
        "pbx_call_id": "in_5a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "caller_id": "79161234567",
        "called_did": "74951234567",
    }
    if event == "NOTIFY_END":
        fields.update(internal="100", duration="0", disposition="no answer", status_code="19")
    return {**fields, **extra}


def _deliver(fields: dict[str, str], signature: str | None = None) -> dict:
    headers = {"content-type": "application/x-www-form-urlencoded", "signature": signature or _signed(fields)}
    return ingest(post("call", urlencode(fields).encode(), headers, "provider=zadarma"))


def test_item12_the_published_signature_vector_is_accepted(env, logs, monkeypatch):
    # trust.md's test vector (computed from Zadarma's official client): base64 of the *hex* digest
    monkeypatch.setenv("CALL_SECRET", "test_secret")
    reset_caches()
    clock.freeze(datetime(2026, 6, 30, 9, 0, tzinfo=UTC))  # 12:00 in Moscow
    fields = {"event": "NOTIFY_START", "call_start": "2026-06-30 11:59:00", "pbx_call_id": "in_1",
              "caller_id": "+79161234567", "called_did": "78430000001"}  # fmt: skip
    answer = _deliver(fields, "MDdmOGQzOTY3M2NlOTY2NDJlYjFlNjhjNTU5ZThlMTY1NDdhZDE2Mw==")
    assert answer["status"] == 200
    assert _deliver(fields, "B/jTlnPOlmQuseaMVZ6OFlR60WM=")["status"] == 403  # base64 of the raw digest


def test_item12_a_captured_end_replayed_with_other_call_ids_makes_no_second_lead(env, logs, frozen):
    # Given a missed call's NOTIFY_END, taken (one lead, one SMS to the caller)
    end = _notify("NOTIFY_END", NOW - timedelta(seconds=40))
    assert _deliver(end)["status"] == 200
    assert len(env.receive("ScoreQueue")) == 1
    # When someone who captured it posts it again with new (unsigned) call ids and dispositions
    for n, disposition in enumerate(["no answer", "busy", "answered", "cancel"]):
        clock.advance(timedelta(minutes=5))
        forged = {**end, "pbx_call_id": f"in_forged{n}", "disposition": disposition}
        assert _deliver(forged, _signed(end))["status"] == 200
    # Then no further lead is made
    assert env.receive("ScoreQueue") == []


def test_item12_a_captured_start_turned_into_an_end_makes_no_second_lead(env, logs, frozen):
    # Given a call's NOTIFY_START and its NOTIFY_END, taken
    started = NOW - timedelta(minutes=3)
    start, end = _notify("NOTIFY_START", started), _notify("NOTIFY_END", started)
    assert _deliver(start)["status"] == 200
    assert _deliver(end)["status"] == 200
    assert len(env.receive("ScoreQueue")) == 1
    # When the start's signature (the same string) is put on a made-up end with another call id
    forged = {**_notify("NOTIFY_END", started), "pbx_call_id": "in_other"}
    assert _deliver(forged, _signed(start))["status"] == 200
    # Then nothing new is queued
    assert env.receive("ScoreQueue") == []


@pytest.mark.parametrize("age", [timedelta(hours=25), timedelta(days=3), timedelta(days=30)])
def test_item12_an_old_call_is_refused(env, logs, frozen, age):
    # Given a request captured long ago, posted with a call id never seen
    old = _notify("NOTIFY_END", NOW - age, pbx_call_id="in_never_seen")
    # Then it is refused, nothing is queued, and the log says why (no number in it)
    assert _deliver(old)["status"] == 403
    assert env.receive("ScoreQueue") == []
    assert "call_start" in logs.text
    logs.watch("79161234567")


def test_item12_a_call_from_the_future_is_refused(env, logs, frozen):
    assert _deliver(_notify("NOTIFY_END", NOW + timedelta(hours=13)))["status"] == 403
    assert env.receive("ScoreQueue") == []


def test_item12_a_long_call_ending_now_is_taken(env, logs, frozen):
    end = _notify("NOTIFY_END", NOW - timedelta(hours=2), disposition="answered", duration="7190")
    assert _deliver(end)["status"] == 200
    assert len(env.receive("ScoreQueue")) == 1


def test_item12_call_start_is_read_in_call_timezone(env, logs, frozen, monkeypatch):
    # Given an account kept in Krasnoyarsk time (UTC+7), and CALL_TIMEZONE saying so
    monkeypatch.setenv("CALL_TIMEZONE", "Asia/Krasnoyarsk")
    reset_caches()
    local = (NOW - timedelta(hours=23, minutes=30)).astimezone(ZoneInfo("Asia/Krasnoyarsk"))
    fields = {**_notify("NOTIFY_END", NOW), "call_start": local.strftime("%Y-%m-%d %H:%M:%S")}
    # Then a call 23.5 h ago is still in the window (read in Moscow time it would be 27.5 h old)…
    assert _deliver(fields)["status"] == 200
    # …and one 24.5 h ago is not
    local = (NOW - timedelta(hours=24, minutes=30)).astimezone(ZoneInfo("Asia/Krasnoyarsk"))
    older = {**fields, "call_start": local.strftime("%Y-%m-%d %H:%M:%S")}
    assert _deliver(older)["status"] == 403


def test_item12_the_url_check_still_echoes_the_token(env, logs):
    from leadflow_local.stack import api_gateway_event

    event = api_gateway_event(
        "GET", "/webhooks/call", "provider=zadarma&zd_echo=f00dBabe42", {}, b"", "185.45.152.42"
    )
    assert ingest(event)["body"] == "f00dBabe42"
