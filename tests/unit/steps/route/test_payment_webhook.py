"""«оплачено / не оплачено» on the card: a ЮKassa notification at /webhooks/payment (from ЮKassa's
addresses only) is re-read from the ЮKassa API stand-in and marks the lead paid once; the card says
«не оплачено» until then. A notification from elsewhere, for a payment ЮKassa does not confirm, or
for another lead changes nothing; a repeated notification changes nothing more."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from leadflow import clock, wiring
from leadflow_local.functions import invoke
from leadflow_local.stack import api_gateway_event, sqs_event
from tests.fakes.http import FakeServer
from tests.fakes.yookassa_server import FakeYookassa
from tests.support.aws import aws_stack
from tests.support.builders import client_writes, route

MSK = ZoneInfo("Europe/Moscow")
TUESDAY_10 = datetime(2026, 12, 1, 10, 0, tzinfo=MSK)
SALON = """
name: Салон «Лайм»
timezone: Europe/Moscow
services:
  - {id: coloring, name: Окрашивание волос, group: hair, price: 4500, duration_min: 90, keywords: [окрашивание]}
branches:
  - id: center
    address: ул. Ленина, 10
    hours: {mon: ["10:00-20:00"], tue: ["10:00-20:00"], wed: ["10:00-20:00"], thu: ["10:00-20:00"],
            fri: ["10:00-20:00"], sat: ["10:00-20:00"], sun: ["10:00-20:00"]}
staff:
  - {id: olga, name: Ольга, skills: [hair], branch: center, telegram_chat_id: "907"}
qualify: {phone_when_missing: false}
booking: {enabled: true, step_min: 30, hold_min: 0, lead_time_min: 60,
          prepayment_url: "https://yoomoney.example/pay?sum={amount}&label={lead_id}"}
"""
YOOKASSA_ADDRESS = "185.71.76.5"


@pytest.fixture
def paid(monkeypatch):
    clock.freeze(TUESDAY_10)
    kassa = FakeYookassa()
    with FakeServer(kassa.route) as server, aws_stack(SALON) as stack:
        for name, value in {"YOOKASSA_SHOP_ID": kassa.shop_id, "YOOKASSA_SECRET_KEY": kassa.secret_key,
                            "YOOKASSA_API_BASE": server.url}.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        wiring.reset()
        lead = client_writes(stack.store, "Хочу на окрашивание в субботу в 13:00")
        lead = route(stack.store, lead.lead_id)
        clock.advance(timedelta(minutes=1))
        client_writes(stack.store, "давайте в 13:00")
        stack.receive("RouteQueue")
        yield kassa, stack, stack.store.leads.get(lead.lead_id)


def _notify(
    lead_id: str, payment_id: str, ip: str = YOOKASSA_ADDRESS, event: str = "payment.succeeded"
) -> int:
    body = {"type": "notification", "event": event,
            "object": {"id": payment_id, "status": "succeeded", "paid": True,
                       "amount": {"value": "4500.00", "currency": "RUB"}, "metadata": {"lead_id": lead_id}}}  # fmt: skip
    event_ = api_gateway_event("POST", "/webhooks/payment", "", {"content-type": "application/json"},
                               json.dumps(body).encode(), ip)  # fmt: skip
    return invoke("ingest", event_)["statusCode"]


def _route_all(stack) -> None:
    batch = stack.receive("RouteQueue")
    if batch:
        assert invoke("route", sqs_event(batch, "RouteQueue")) == {"batchItemFailures": []}


def _card(lead) -> str:
    return wiring.route_step().cards.text(wiring.store().leads.get(lead.lead_id))


def test_a_confirmed_prepayment_marks_the_lead_paid_once_and_the_card_says_so(paid) -> None:
    kassa, stack, lead = paid
    assert lead.status == "booked" and lead.card
    assert "💳 Предоплата: не оплачено" in _card(lead)

    kassa.add("2d3c1a4e-000f-5000-9000-1b68e7b15f3f", lead.lead_id)
    assert _notify(lead.lead_id, "2d3c1a4e-000f-5000-9000-1b68e7b15f3f") == 200
    _route_all(stack)
    marked = stack.store.leads.get(lead.lead_id)
    assert marked.payment_id == "2d3c1a4e-000f-5000-9000-1b68e7b15f3f" and marked.paid_at == clock.now()
    assert "💳 Предоплата: оплачено (4\u202f500\u00a0₽)" in _card(lead)
    edits = [m for m in stack.store.conversation.outbound(lead.lead_id) if m["kind"] == "card_update"]
    assert "оплачено (4\u202f500" in edits[-1]["text"]

    # ЮKassa repeats the notification (it does until it hears 200): nothing changes
    clock.advance(timedelta(minutes=5))
    assert _notify(lead.lead_id, "2d3c1a4e-000f-5000-9000-1b68e7b15f3f") == 200
    _route_all(stack)
    assert stack.store.leads.get(lead.lead_id).paid_at == marked.paid_at


def test_a_notification_from_outside_yookassas_addresses_is_refused(paid) -> None:
    kassa, stack, lead = paid
    kassa.add("pay-1", lead.lead_id)
    assert _notify(lead.lead_id, "pay-1", ip="203.0.113.7") == 403
    assert stack.receive("RouteQueue") == []


@pytest.mark.parametrize("state", ["unknown to ЮKassa", "still pending", "another lead's"])
def test_a_notification_yookassa_does_not_confirm_marks_nothing(paid, state: str) -> None:
    kassa, stack, lead = paid
    if state == "still pending":
        kassa.add("pay-2", lead.lead_id, status="pending")
    elif state == "another lead's":
        kassa.add("pay-2", "L-somebody-else")
    assert _notify(lead.lead_id, "pay-2") == 200
    _route_all(stack)
    assert stack.store.leads.get(lead.lead_id).paid_at is None
    assert "💳 Предоплата: не оплачено" in _card(lead)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "../x"}}'],
)
def test_a_malformed_notification_is_a_clear_400(paid, body: bytes) -> None:
    event = api_gateway_event("POST", "/webhooks/payment", "", {"content-type": "application/json"}, body,
                              YOOKASSA_ADDRESS)  # fmt: skip
    assert invoke("ingest", event)["statusCode"] == 400


def test_events_other_than_succeeded_are_taken_and_ignored(paid) -> None:
    _, stack, lead = paid
    assert _notify(lead.lead_id, "pay-3", event="payment.canceled") == 200
    assert stack.receive("RouteQueue") == []
