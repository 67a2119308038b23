"""«Записан» when the business books for real: the calendar's time is taken for the lead (or the
press is refused with the reason when the master is busy then), and the client is told."""

from __future__ import annotations

from datetime import datetime

import pytest

from leadflow import clock, wiring
from leadflow.adapters.booking import SlotTaken
from leadflow.business import Booking
from leadflow.domain.schedule import Slot
from leadflow_local.inspect import CannotBook, book
from tests.support.builders import KRASNOYARSK, use_business
from tests.support.builders import lead as make_lead
from tests.unit.steps.workspace.test_card_and_buttons import BOOKING, _card

SUNDAY_15 = datetime(2026, 3, 15, 15, 0, tzinfo=KRASNOYARSK)


@pytest.fixture
def booking_ws(telegram_ws, monkeypatch):
    stored = wiring.business()
    use_business(monkeypatch, stored.model_copy(update={"booking": Booking(enabled=True, hold_min=0)}))
    return telegram_ws


def _desk_books(master: str, at: datetime) -> None:
    """Somebody else's visit with ``master`` at ``at`` (an administrator at the desk)."""
    system = wiring.booking(wiring.business())
    other = make_lead("desk", service="manicure")
    system.book(Slot(at, master, 60, service="manicure"), other, clock.now())


def test_booked_from_the_card_takes_the_calendar_time_and_tells_the_client(booking_ws) -> None:
    ws = booking_ws
    ws.say(BOOKING)
    lead, chat, _ = _card(ws)
    ws.press(chat, f"book:{lead.lead_id}", ws.card_id(lead))
    lead = ws.lead(lead.lead_id)
    assert lead.status == "booked" and lead.appointment_at == SUNDAY_15 and lead.booked_master == lead.owner
    name = {"anna": "Анна", "katya": "Катя"}[lead.owner or ""]
    (confirmation,) = ws.outbox(lead.lead_id, "booking_confirmation")
    assert confirmation["text"] == (
        f"Готово! Записали вас на маникюр завтра, 15 марта, в 15:00, мастер — {name}. Стоимость — 1\u202f200\u00a0₽."
    )
    with pytest.raises(SlotTaken):  # the time is the lead's now: nobody else gets it
        _desk_books(lead.owner or "", SUNDAY_15)


def test_booked_from_the_card_refuses_a_taken_time_with_the_reason(booking_ws) -> None:
    ws = booking_ws
    ws.say(BOOKING)
    lead, chat, _ = _card(ws)
    _desk_books(lead.owner or "", SUNDAY_15.replace(minute=30))
    ws.press(chat, f"book:{lead.lead_id}", ws.card_id(lead))
    assert ws.lead(lead.lead_id).status != "booked"
    toast = list(ws.tg.answered_callbacks.values())[-1]
    name = {"anna": "Анна", "katya": "Катя"}[lead.owner or ""]
    assert toast.startswith(f"Не записано: у мастера {name} это время уже занято (15.03 15:00, 60 мин).")
    assert ws.outbox(lead.lead_id, "booking_confirmation") == []


def test_leadflow_book_refuses_a_taken_time(booking_ws) -> None:
    ws = booking_ws
    ws.say(BOOKING)
    lead, _, _ = _card(ws)
    _desk_books(lead.owner or "", SUNDAY_15.replace(hour=16))
    with pytest.raises(CannotBook, match="это время уже занято"):
        book(lead.lead_id, SUNDAY_15.replace(hour=16, minute=30))
    booked = book(lead.lead_id, SUNDAY_15.replace(hour=12))
    assert booked.appointment_at == SUNDAY_15.replace(hour=12) and booked.status == "booked"
    assert len(ws.outbox(lead.lead_id, "booking_confirmation")) == 1
