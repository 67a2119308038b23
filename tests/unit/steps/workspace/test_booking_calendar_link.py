"""The confirmation's «Добавить в календарь» link when PUBLIC_BASE_URL is set: /ics/<token>.ics,
served by the real panel handler as text/calendar; the token is kept when the visit moves (the
file then shows the new time); unknown, malformed, expired and cancelled links answer 404."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from leadflow import clock, wiring
from leadflow.business import Booking
from leadflow_local.functions import invoke
from leadflow_local.inspect import book
from leadflow_local.stack import api_gateway_event
from tests.support.builders import KRASNOYARSK, use_business
from tests.unit.steps.workspace.test_card_and_buttons import BOOKING, _card

BASE = "https://salon.example.com"
SUNDAY_15 = datetime(2026, 3, 15, 15, 0, tzinfo=KRASNOYARSK)
LINK = re.compile(r"Добавить в календарь: (https://salon\.example\.com/ics/([A-Za-z0-9_-]+)\.ics)$")


@pytest.fixture
def linked_ws(telegram_ws, monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", BASE)
    wiring.reset()
    stored = wiring.business()
    use_business(monkeypatch, stored.model_copy(update={"booking": Booking(enabled=True, hold_min=0)}))
    return telegram_ws


def get(path: str) -> dict:
    event = api_gateway_event("GET", path, "", {"host": "salon.example.com"}, b"", "203.0.113.9")
    return invoke("panel", event)


def booked_from_the_card(ws):
    ws.say(BOOKING)
    lead, chat, _ = _card(ws)
    ws.press(chat, f"book:{lead.lead_id}", ws.card_id(lead))
    return ws.lead(lead.lead_id)


def test_the_confirmation_links_an_ics_of_the_visit(linked_ws) -> None:
    ws = linked_ws
    lead = booked_from_the_card(ws)
    (confirmation,) = ws.outbox(lead.lead_id, "booking_confirmation")
    match = LINK.search(confirmation["text"])
    assert match, confirmation["text"]
    assert len(match.group(2)) >= 32  # secrets.token_urlsafe(24)
    answer = get(f"/ics/{match.group(2)}.ics")
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "text/calendar; charset=utf-8"
    body = answer["body"]
    assert body.startswith("BEGIN:VCALENDAR\r\n") and body.endswith("END:VCALENDAR\r\n")
    assert f"UID:{lead.lead_id}@leadflow\r\n" in body
    assert "DTSTART:20260315T080000Z\r\n" in body and "DTEND:20260315T090000Z\r\n" in body  # 60 min
    assert "SUMMARY:Маникюр — " in body


def test_a_moved_visit_keeps_the_link_and_the_file_shows_the_new_time(linked_ws) -> None:
    ws = linked_ws
    lead = booked_from_the_card(ws)
    (first,) = ws.outbox(lead.lead_id, "booking_confirmation")
    moved = book(lead.lead_id, SUNDAY_15.replace(hour=12))  # `leadflow book`: a move
    assert moved.appointment_at == SUNDAY_15.replace(hour=12)
    confirmations = ws.outbox(lead.lead_id, "booking_confirmation")
    assert len(confirmations) == 2
    url = LINK.search(first["text"]).group(1)  # type: ignore[union-attr]
    assert LINK.search(confirmations[-1]["text"]).group(1) == url  # type: ignore[union-attr]
    body = get(url.removeprefix(BASE))["body"]
    assert "DTSTART:20260315T050000Z\r\n" in body and "20260315T080000Z" not in body
    assert "SEQUENCE:1\r\n" in body  # a calendar that imported the first file updates the event


def test_an_expired_link_answers_404_and_a_cancelled_visit_a_cancel_event(linked_ws) -> None:
    ws = linked_ws
    lead = booked_from_the_card(ws)
    (confirmation,) = ws.outbox(lead.lead_id, "booking_confirmation")
    path = LINK.search(confirmation["text"]).group(1).removeprefix(BASE)  # type: ignore[union-attr]
    assert get(path)["statusCode"] == 200
    clock.freeze(SUNDAY_15.astimezone(UTC) + timedelta(days=31))  # a month after the visit
    assert get(path)["statusCode"] == 404
    clock.freeze(SUNDAY_15.astimezone(UTC) - timedelta(hours=12))
    assert get(path)["statusCode"] == 200
    ws.say("Отмена")
    assert ws.lead(lead.lead_id).status == "cancelled"
    answer = get(path)
    assert answer["statusCode"] == 200, answer["body"]  # a calendar that imported it removes it
    assert "METHOD:CANCEL\r\n" in answer["body"] and "STATUS:CANCELLED\r\n" in answer["body"]
    assert f"UID:{lead.lead_id}@leadflow\r\n" in answer["body"] and "SEQUENCE:1\r\n" in answer["body"]


@pytest.mark.parametrize(
    "path",
    [
        "/ics/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.ics",  # well-formed, never issued
        "/ics/short.ics",
        "/ics/../panel/summary",
        "/ics/" + "A" * 200 + ".ics",
        "/ics/%00%ff.ics",
    ],
)
def test_an_unknown_or_malformed_link_is_a_plain_404(linked_ws, path: str) -> None:
    answer = get(path)
    assert answer["statusCode"] == 404
    assert answer["body"] == "not found" and "Traceback" not in answer["body"]


def test_no_link_without_public_base_url(telegram_ws, monkeypatch) -> None:
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    wiring.reset()
    stored = wiring.business()
    use_business(monkeypatch, stored.model_copy(update={"booking": Booking(enabled=True, hold_min=0)}))
    lead = booked_from_the_card(telegram_ws)
    (confirmation,) = telegram_ws.outbox(lead.lead_id, "booking_confirmation")
    assert "календарь" not in confirmation["text"]
    assert telegram_ws.lead(lead.lead_id).calendar_token is None
