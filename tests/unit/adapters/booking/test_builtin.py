"""The built-in calendar in DynamoDB: holds and bookings take a master's time in one conditional
transaction, so two clients never get one master's slot — not even 50 at the same moment."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import boto3
import pytest

from leadflow.adapters.booking import SlotTaken
from leadflow.adapters.booking.builtin import BuiltinBooking
from leadflow.domain.models import Lead
from leadflow.domain.schedule import Slot
from tests.support.aws import REGION, atomic_moto_writes, aws_stack
from tests.support.builders import business

MSK = ZoneInfo("Europe/Moscow")
CONFIG = """
timezone: Europe/Moscow
services:
  - {id: coloring, name: Окрашивание, group: hair, duration_min: 90, keywords: [окрашивание]}
  - {id: haircut, name: Стрижка, group: hair, duration_min: 60, keywords: [стрижка]}
staff:
  - {id: olga, name: Ольга, skills: [hair]}
  - {id: vera, name: Вера, skills: [hair]}
booking: {enabled: true, step_min: 30, gap_min: 30, hold_min: 15, lead_time_min: 0}
"""
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=MSK)


def lead(lead_id: str) -> Lead:
    return Lead(lead_id=lead_id, channel="telegram", chat_id="1", contact_id="c", service="coloring",
                received_at=NOW, last_message_at=NOW)  # fmt: skip


@pytest.fixture
def calendar():
    with aws_stack(None):
        yield BuiltinBooking(
            boto3.resource("dynamodb", region_name=REGION).Table("BookingsTable"), business(CONFIG)
        )


def at(hhmm: str) -> datetime:
    hours, minutes = (int(p) for p in hhmm.split(":"))
    return NOW.replace(hour=hours, minute=minutes)


def test_a_booked_slot_and_its_gap_are_no_longer_free(calendar: BuiltinBooking) -> None:
    service = calendar.business.service("coloring")
    calendar.book(Slot(at("12:00"), "olga", 90, service="coloring"), lead("L1"), NOW)
    olga = [f"{s.start:%H:%M}" for s in calendar.free_slots(service, NOW.date(), NOW) if s.master == "olga"]
    # 12:00-13:30 plus a 30 min gap; before it 90 min + gap must end by 12:00
    assert "10:00" in olga and "10:30" not in olga and "12:00" not in olga and "13:30" not in olga
    assert "14:00" in olga
    vera = [s for s in calendar.free_slots(service, NOW.date(), NOW) if s.master == "vera"]
    assert any(f"{s.start:%H:%M}" == "12:00" for s in vera)  # another master is not affected


def test_an_overlapping_booking_of_the_same_master_is_refused(calendar: BuiltinBooking) -> None:
    calendar.book(Slot(at("12:00"), "olga", 90), lead("L1"), NOW)
    with pytest.raises(SlotTaken):
        calendar.book(Slot(at("13:00"), "olga", 60), lead("L2"), NOW)
    calendar.book(Slot(at("12:00"), "olga", 90), lead("L1"), NOW)  # the same booking again: idempotent


def test_a_hold_keeps_a_slot_for_its_client_until_it_expires(calendar: BuiltinBooking) -> None:
    slot = Slot(at("15:00"), "vera", 60)
    assert calendar.hold(slot, "L1", NOW)
    assert not calendar.hold(slot, "L2", NOW)
    with pytest.raises(SlotTaken):
        calendar.book(slot, lead("L2"), NOW)
    later = NOW + timedelta(minutes=16)
    assert calendar.hold(slot, "L2", later)  # L1 took too long
    calendar.book(slot, lead("L2"), later)
    with pytest.raises(SlotTaken):
        calendar.book(slot, lead("L1"), later)


def test_released_holds_and_cancelled_bookings_free_the_time(calendar: BuiltinBooking) -> None:
    service = calendar.business.service("haircut")
    slot = Slot(at("15:00"), "vera", 60)
    assert calendar.hold(slot, "L1", NOW)
    calendar.release([slot], "L1")
    assert calendar.hold(slot, "L2", NOW)
    calendar.release([slot], "L2")
    booked = calendar.book(slot, lead("L3"), NOW)
    assert at("15:00") not in {
        s.start for s in calendar.free_slots(service, NOW.date(), NOW) if s.master == "vera"
    }
    done = lead("L3").model_copy(update={"booking_ref": booked.ref, "service": "haircut"})
    calendar.cancel(done)
    assert at("15:00") in {
        s.start for s in calendar.free_slots(service, NOW.date(), NOW) if s.master == "vera"
    }


def test_fifty_clients_picking_overlapping_slots_at_once_never_share_a_master(
    calendar: BuiltinBooking,
) -> None:
    """Every client picks one of a few overlapping starts of two masters at the same moment."""
    starts = [Slot(at(t), m, 90) for t in ("12:00", "12:30", "13:00") for m in ("olga", "vera")]
    booked: list[tuple[str, Slot]] = []
    refused: list[str] = []
    barrier = threading.Barrier(50)
    lock = threading.Lock()

    def client(i: int) -> None:
        slot = starts[i % len(starts)]
        barrier.wait()
        try:
            calendar.book(slot, lead(f"L{i}"), NOW)
            with lock:
                booked.append((f"L{i}", slot))
        except SlotTaken:
            with lock:
                refused.append(f"L{i}")

    with atomic_moto_writes():
        threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(booked) + len(refused) == 50
    for master in ("olga", "vera"):
        visits = sorted(s.start for _, s in booked if s.master == master)
        assert len(visits) == 1, f"{master} booked {len(visits)} times into overlapping slots"
    # what is stored agrees: each master's cells belong to one lead
    busy = calendar.busy(NOW.date(), NOW)
    assert sorted(b.master for b in busy) == ["olga", "vera"]
