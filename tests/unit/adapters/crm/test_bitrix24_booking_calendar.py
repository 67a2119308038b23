"""A visit booked in Bitrix24 (the booking field, read on the CRM's outbound event) with a responsible
master takes that master's time in the built-in calendar, so the bot does not offer it; a move
there frees the old time; a cleared field or a lost stage cancels the visit: the client is told once
(a repeated event changes nothing), the reminders go, the calendar's time comes back."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from leadflow import clock, wiring
from leadflow.domain.models import CrmEvent
from tests.fakes.bitrix24_server import Bitrix24Portal
from tests.support.aws import aws_stack
from tests.support.builders import client_writes, route

MSK = ZoneInfo("Europe/Moscow")
TUESDAY_10 = datetime(2026, 12, 1, 10, 0, tzinfo=MSK)
SATURDAY = date(2026, 12, 5)
FIELD = "UF_CRM_VISIT_AT"
SALON = """
name: Салон «Лайм»
timezone: Europe/Moscow
services:
  - {id: coloring, name: Окрашивание волос, group: hair, price: 4500, duration_min: 90, keywords: [окрашивание]}
branches:
  - id: center
    name: Центр
    address: ул. Ленина, 10
    hours: {mon: ["10:00-20:00"], tue: ["10:00-20:00"], wed: ["10:00-20:00"], thu: ["10:00-20:00"],
            fri: ["10:00-20:00"], sat: ["10:00-20:00"], sun: ["10:00-20:00"]}
staff:
  - {id: olga, name: Ольга, skills: [hair], branch: center, bitrix24_user_id: 7, telegram_chat_id: "907"}
  - {id: vera, name: Вера, skills: [hair], branch: center, bitrix24_user_id: 8, telegram_chat_id: "908"}
qualify: {phone_when_missing: false}
crm: {booking_field: UF_CRM_VISIT_AT}
booking: {enabled: true, step_min: 30, hold_min: 0, lead_time_min: 60}
"""


@pytest.fixture
def crm(monkeypatch):
    clock.freeze(TUESDAY_10)
    with Bitrix24Portal(mode=1, rate_limit=False) as portal, aws_stack(SALON) as stack:
        monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
        wiring.reset()
        lead = client_writes(stack.store, "Хочу на окрашивание, 89138402765")
        routed = route(stack.store, lead.lead_id)
        assert routed.crm_id
        yield portal, stack, routed
    assert not portal.violations


_events = iter(range(1, 10_000))


def _crm_event(crm_id: str) -> None:
    wiring.route_step().crm_sync.apply(
        CrmEvent(
            event_id=f"b{next(_events)}", event="ONCRMLEADUPDATE", crm_id=crm_id, received_at=clock.now()
        )
    )


def _set(portal, crm_id: str, **fields) -> None:
    portal.portal.leads[int(crm_id)].update(fields)


def _free(master: str) -> list[str]:
    business = wiring.business()
    slots = wiring.booking(business).free_slots(business.service("coloring"), SATURDAY, clock.now())
    return [f"{s.start.astimezone(MSK):%H:%M}" for s in slots if s.master == master]


def _cancel_messages(stack, lead_id: str) -> list[str]:
    return [m["text"] for m in stack.store.conversation.outbound(lead_id) if m["kind"] == "booking_cancelled"]


def _reminders(stack, lead_id: str) -> list[str]:
    items = stack.store.timers.table.scan()["Items"]
    return [i["timer_id"] for i in items if i.get("lead_id") == lead_id and i["kind"] == "appointment"]


def test_a_bitrix24_booking_with_olga_takes_her_time_and_a_move_frees_it(crm) -> None:
    portal, stack, lead = crm
    assert "14:00" in _free("olga")
    # Given a manager books the client at 14:00 on Saturday with Ольга in Bitrix24
    _set(portal, lead.crm_id, **{FIELD: "2026-12-05T14:00:00+03:00", "ASSIGNED_BY_ID": 7})
    _crm_event(lead.crm_id)
    booked = stack.store.leads.get(lead.lead_id)
    assert booked.status == "booked" and booked.booked_master == "olga" and booked.booked_in_crm
    # Then the bot's offer for that day skips 14:00 (and what overlaps it) for Ольга, not for Вера
    olga = _free("olga")
    assert "14:00" not in olga and "13:00" not in olga and "15:00" not in olga
    assert "12:30" in olga and "15:30" in olga and "14:00" in _free("vera")

    # When the visit is moved to 14:30 in Bitrix24 (overlapping the old one)
    _set(portal, lead.crm_id, **{FIELD: "2026-12-05T14:30:00+03:00"})
    _crm_event(lead.crm_id)
    assert stack.store.leads.get(lead.lead_id).appointment_at == datetime(2026, 12, 5, 14, 30, tzinfo=MSK)
    olga = _free("olga")
    assert "13:00" in olga  # the old visit's first hour is free again
    assert "14:30" not in olga and "15:30" not in olga and "16:00" in olga  # the new one is kept whole


def test_a_cleared_booking_field_cancels_the_visit_once_and_frees_the_time(crm) -> None:
    portal, stack, lead = crm
    _set(portal, lead.crm_id, **{FIELD: "2026-12-05T14:00:00+03:00", "ASSIGNED_BY_ID": 7})
    _crm_event(lead.crm_id)
    assert len(_reminders(stack, lead.lead_id)) == 2 and "14:00" not in _free("olga")

    # When the manager clears the date in Bitrix24, and Bitrix24 sends its event twice
    _set(portal, lead.crm_id, **{FIELD: ""})
    _crm_event(lead.crm_id)
    _crm_event(lead.crm_id)

    # Then the visit is cancelled, the client told once in Russian, reminders gone, time free
    assert stack.store.leads.get(lead.lead_id).status == "cancelled"
    assert _cancel_messages(stack, lead.lead_id) == [
        "Ваша запись на окрашивание волос в субботу, 5 декабря, в 14:00 отменена. "
        "Если захотите прийти в другое время — напишите, подберём."
    ]
    assert _reminders(stack, lead.lead_id) == []
    assert "14:00" in _free("olga")


def test_an_empty_field_does_not_cancel_a_visit_the_bot_booked(crm) -> None:
    _, stack, lead = crm
    clock.advance(timedelta(minutes=1))
    client_writes(stack.store, "можно в субботу в 12:00?")
    assert stack.store.leads.get(lead.lead_id).offered  # the bot offers real slots
    client_writes(stack.store, "давайте в 12:00")
    booked = stack.store.leads.get(lead.lead_id)
    assert booked.status == "booked" and not booked.booked_in_crm
    _crm_event(lead.crm_id)  # the field was never set in Bitrix24
    assert stack.store.leads.get(lead.lead_id).status == "booked"
    assert _cancel_messages(stack, lead.lead_id) == []


def test_a_booked_lead_moved_to_a_lost_stage_is_cancelled_to_the_client_once(crm) -> None:
    portal, stack, lead = crm
    _set(portal, lead.crm_id, **{FIELD: "2026-12-05T14:00:00+03:00", "ASSIGNED_BY_ID": 7})
    _crm_event(lead.crm_id)
    _set(portal, lead.crm_id, STATUS_ID="JUNK")
    _crm_event(lead.crm_id)
    _crm_event(lead.crm_id)
    assert stack.store.leads.get(lead.lead_id).status == "lost"
    assert len(_cancel_messages(stack, lead.lead_id)) == 1
    assert _reminders(stack, lead.lead_id) == [] and "14:00" in _free("olga")


def test_a_bitrix24_time_another_client_holds_is_kept_and_the_owner_told(crm) -> None:
    portal, stack, lead = crm
    _set(portal, lead.crm_id, **{FIELD: "2026-12-05T12:00:00+03:00", "ASSIGNED_BY_ID": 7})
    _crm_event(lead.crm_id)
    assert "12:00" not in _free("olga")
    # another client books Ольга at 14:00 through the bot
    other = client_writes(stack.store, "Хочу на окрашивание в субботу в 14:00 к Ольге", chat="6001")
    client_writes(stack.store, "давайте в 14:00", chat="6001")
    other = stack.store.leads.get(other.lead_id)
    assert other.booked_master == "olga" and other.appointment_at == datetime(2026, 12, 5, 14, 0, tzinfo=MSK)

    # When the manager moves our client onto Ольга's 14:00 in Bitrix24
    _set(portal, lead.crm_id, **{FIELD: "2026-12-05T14:00:00+03:00"})
    _crm_event(lead.crm_id)

    # Then the CRM's time stands, the owner hears of the clash, 12:00 is free, 14:00 stays the other's
    moved = stack.store.leads.get(lead.lead_id)
    assert moved.appointment_at == datetime(2026, 12, 5, 14, 0, tzinfo=MSK) and moved.booking_ref is None
    notes = [m["text"] for m in stack.store.conversation.outbound(lead.lead_id) if m["kind"] == "owner_note"]
    assert any("уже занято другим клиентом" in n for n in notes)
    assert "12:00" in _free("olga") and "14:00" not in _free("olga")


class Killed(BaseException):
    """The Lambda runtime killing the invocation at a failpoint (nothing after it runs)."""


def test_a_crash_after_the_booking_is_written_still_confirms_and_reminds_on_the_retry(
    crm, monkeypatch
) -> None:
    from leadflow import failpoints

    portal, stack, lead = crm
    _set(portal, lead.crm_id, **{FIELD: "2026-12-05T14:00:00+03:00", "ASSIGNED_BY_ID": 7})

    def dies(point: str) -> None:
        if point == "crm_sync.after_booking_write":
            monkeypatch.setattr(failpoints, "hit", lambda point: None)
            raise Killed(point)

    monkeypatch.setattr(failpoints, "hit", dies)
    event = CrmEvent(event_id="b-crash", event="ONCRMLEADUPDATE", crm_id=lead.crm_id, received_at=clock.now())
    with pytest.raises(Killed):
        wiring.route_step().crm_sync.apply(event)
    assert stack.store.leads.get(lead.lead_id).status == "booked"  # written, the rest not done
    assert _reminders(stack, lead.lead_id) == []

    wiring.route_step().crm_sync.apply(event)  # the queue brings the event back
    wiring.route_step().crm_sync.apply(event)  # and once more

    assert sorted(_reminders(stack, lead.lead_id)) == [f"appt#{lead.lead_id}#2", f"appt#{lead.lead_id}#24"]
    confirmations = [
        m for m in stack.store.conversation.outbound(lead.lead_id) if m["kind"] == "booking_confirmation"
    ]
    assert len(confirmations) == 1 and "в субботу, 5 декабря, в 14:00" in confirmations[0]["text"]
