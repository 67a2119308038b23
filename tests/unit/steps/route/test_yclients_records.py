"""With YCLIENTS as the booking system: the bot offers YCLIENTS' free times and books the pick
there; a record moved, created or deleted in YCLIENTS comes back through /webhooks/yclients and
moves, books or cancels the lead with its reminders (the record is re-read, not taken on trust)."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from leadflow import clock, wiring
from leadflow_local.functions import invoke
from leadflow_local.stack import api_gateway_event, sqs_event
from tests.fakes.http import FakeServer
from tests.fakes.yclients_server import FakeYclients, record_json
from tests.support.aws import aws_stack
from tests.support.builders import client_writes

MSK = ZoneInfo("Europe/Moscow")
TUESDAY_10 = datetime(2026, 12, 1, 10, 0, tzinfo=MSK)
CONFIG = """
timezone: Europe/Moscow
services:
  - {id: coloring, name: Окрашивание волос, group: hair, price: 4500, duration_min: 90, yclients_id: 331,
     keywords: [окрашивание]}
staff:
  - {id: olga, name: Ольга, skills: [hair], yclients_id: 6544}
qualify: {phone_when_missing: false}
booking: {enabled: true, system: yclients, yclients: {company_id: 555}}
"""


@pytest.fixture
def yclients(monkeypatch):
    clock.freeze(TUESDAY_10)
    fake = FakeYclients(staff={6544: "Ольга"}, services={331: 90})
    with FakeServer(fake.route) as server, aws_stack(CONFIG) as stack:
        for name, value in {
            "YCLIENTS_PARTNER_TOKEN": "partner-token", "YCLIENTS_USER_TOKEN": "user-token",
            "YCLIENTS_API_BASE": server.url, "YCLIENTS_WEBHOOK_SECRET": "yc-secret",
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        wiring.reset()
        yield fake, stack


def _webhook(fake: FakeYclients, record, status: str, secret: str = "yc-secret") -> int:  # noqa: S107
    body = {"company_id": 555, "resource": "record", "resource_id": record.record_id, "status": status,
            "data": record_json(record, 555, fake.staff)}  # fmt: skip
    event = api_gateway_event("POST", "/webhooks/yclients", f"secret={secret}",
                              {"content-type": "application/json"}, json.dumps(body).encode(), "127.0.0.1")  # fmt: skip
    return invoke("ingest", event)["statusCode"]


def _route_all(stack) -> None:
    batch = stack.receive("RouteQueue")
    assert batch
    assert invoke("route", sqs_event(batch, "RouteQueue")) == {"batchItemFailures": []}


def _reminders(stack, lead_id: str) -> list[str]:
    items = stack.store.timers.table.scan()["Items"]
    return sorted(
        i["due_at"][:16] for i in items if i.get("lead_id") == lead_id and i["kind"] == "appointment"
    )


def test_booked_in_yclients_then_moved_there_moves_the_reminders(yclients) -> None:
    fake, stack = yclients
    lead = client_writes(stack.store, "окрашивание в субботу в 13, 89138402765")
    assert [f"{o.start.astimezone(MSK):%H:%M}" for o in lead.offered] == ["12:30", "13:00", "13:30"]
    lead = client_writes(stack.store, "давайте в 13:00")
    (record,) = fake.live()
    assert (
        lead.status == "booked"
        and lead.booking_ref == str(record.record_id)
        and record.api_id == lead.lead_id
    )
    assert _reminders(stack, lead.lead_id) == ["2026-12-04T10:00", "2026-12-05T08:00"]
    stack.receive("RouteQueue")

    # the administrator moves the visit in YCLIENTS
    record.start = datetime(2026, 12, 5, 16, 0, tzinfo=MSK)
    assert _webhook(fake, record, "update") == 200
    _route_all(stack)
    moved = stack.store.leads.get(lead.lead_id)
    assert moved.appointment_at == record.start
    assert _reminders(stack, lead.lead_id) == ["2026-12-04T13:00", "2026-12-05T11:00"]
    confirmations = [
        m for m in stack.store.conversation.outbound(lead.lead_id) if m["kind"] == "booking_confirmation"
    ]
    assert confirmations[-1]["text"].startswith(
        "Готово! Записали вас на окрашивание волос в субботу, 5 декабря, в 16:00"
    )

    # and deletes it: the lead is cancelled, so no reminder goes out
    fake.records[-1].deleted = True
    assert _webhook(fake, record, "delete") == 200
    _route_all(stack)
    assert stack.store.leads.get(lead.lead_id).status == "cancelled"


def test_a_record_made_at_the_desk_books_the_clients_open_lead_by_phone(yclients) -> None:
    fake, stack = yclients
    lead = client_writes(stack.store, "хочу на окрашивание, 89138402765")
    record = fake.take(6544, datetime(2026, 12, 3, 12, 0, tzinfo=MSK), 90)
    record.phone = "79138402765"
    assert _webhook(fake, record, "create") == 200
    _route_all(stack)
    booked = stack.store.leads.get(lead.lead_id)
    assert booked.status == "booked" and booked.booked_master == "olga"
    assert _reminders(stack, lead.lead_id) == ["2026-12-02T09:00", "2026-12-03T07:00"]


def test_a_webhook_without_the_secret_is_refused(yclients) -> None:
    fake, stack = yclients
    record = fake.take(6544, datetime(2026, 12, 3, 12, 0, tzinfo=MSK), 90)
    assert _webhook(fake, record, "create", secret="wrong") == 403
    assert stack.receive("RouteQueue") == []


class Killed(BaseException):
    """The Lambda runtime killing the invocation at a failpoint (nothing after it runs)."""


def test_a_record_made_before_a_crash_is_adopted_on_the_retry_not_called_taken(yclients, monkeypatch) -> None:
    from leadflow import failpoints
    from leadflow.domain.models import Contact, InboundMessage

    fake, stack = yclients
    lead = client_writes(stack.store, "окрашивание в субботу в 13, 89138402765")
    assert [f"{o.start.astimezone(MSK):%H:%M}" for o in lead.offered] == ["12:30", "13:00", "13:30"]
    pick = InboundMessage(
        message_id="telegram:5001:pick", channel="telegram", chat_id="5001",
        contact=Contact(name="Ирина", channel_user_id="5001"), text="давайте в 13:00", received_at=clock.now(),
    )  # fmt: skip

    # Given the record was made in YCLIENTS and the invocation died before the lead was saved
    def dies(point: str) -> None:
        if point == "booking.after_book":
            monkeypatch.setattr(failpoints, "hit", lambda point: None)
            raise Killed(point)

    monkeypatch.setattr(failpoints, "hit", dies)
    with pytest.raises(Killed):
        wiring.score_step().handle(pick)
    assert len(fake.live()) == 1 and stack.store.leads.get(lead.lead_id).appointment_at is None

    # When the queue retries the message
    wiring.score_step().handle(pick)

    # Then our own record is adopted: one record, the lead booked on it, the client told «записали»
    (record,) = fake.live()
    booked = stack.store.leads.get(lead.lead_id)
    assert booked.status == "booked" and booked.booking_ref == str(record.record_id)
    assert booked.appointment_at == datetime(2026, 12, 5, 13, 0, tzinfo=MSK)
    texts = [m["text"] for m in stack.store.conversation.outbound(lead.lead_id)]
    assert texts[-1].startswith("Готово! Записали вас на окрашивание волос в субботу, 5 декабря, в 13:00")
    assert not any("занял" in t for t in texts)


def _cancel_messages(stack, lead_id: str) -> list[str]:
    return [m["text"] for m in stack.store.conversation.outbound(lead_id) if m["kind"] == "booking_cancelled"]


def test_a_record_deleted_in_yclients_is_confirmed_to_the_client_once(yclients) -> None:
    fake, stack = yclients
    client_writes(stack.store, "окрашивание в субботу в 13, 89138402765")
    lead = client_writes(stack.store, "давайте в 13:00")
    (record,) = fake.live()
    assert _reminders(stack, lead.lead_id) and stack.receive("RouteQueue") is not None

    # the administrator deletes the record in YCLIENTS; YCLIENTS sends its webhook twice
    record.deleted = True
    assert _webhook(fake, record, "delete") == 200
    batch = stack.receive("RouteQueue")
    assert _webhook(fake, record, "delete") == 200  # ingest's dedupe may take the copy or not:
    batch += stack.receive("RouteQueue")
    assert invoke("route", sqs_event(batch + batch, "RouteQueue")) == {"batchItemFailures": []}
    assert invoke("route", sqs_event(batch, "RouteQueue")) == {"batchItemFailures": []}  # the queue again

    cancelled = stack.store.leads.get(lead.lead_id)
    assert cancelled.status == "cancelled"
    assert _cancel_messages(stack, lead.lead_id) == [
        "Ваша запись на окрашивание волос в субботу, 5 декабря, в 13:00 отменена. "
        "Если захотите прийти в другое время — напишите, подберём."
    ]
    assert _reminders(stack, lead.lead_id) == []


def test_a_record_marked_did_not_come_before_the_visit_is_a_cancel(yclients) -> None:
    fake, stack = yclients
    client_writes(stack.store, "окрашивание в субботу в 13, 89138402765")
    lead = client_writes(stack.store, "давайте в 13:00")
    (record,) = fake.live()
    stack.receive("RouteQueue")
    # the desk marks «не пришёл» on Tuesday for Saturday's visit: the client called it off
    record.attendance = -1
    assert _webhook(fake, record, "update") == 200
    _route_all(stack)
    assert stack.store.leads.get(lead.lead_id).status == "cancelled"
    assert len(_cancel_messages(stack, lead.lead_id)) == 1
