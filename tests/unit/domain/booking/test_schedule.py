"""Free slots from shifts, durations, breaks, days off, bookings and the gap; the slots near a wish;
the client's pick; a master named by a short form of her name."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from leadflow.domain.schedule import Busy, Slot, find_offer, free_slots, named_master, nearest, picked_slot
from tests.support.builders import business

MSK = ZoneInfo("Europe/Moscow")
SALON = """
timezone: Europe/Moscow
services:
  - {id: coloring, name: Окрашивание, group: hair, price: 4500, duration_min: 90, keywords: [окрашивание]}
  - {id: haircut, name: Стрижка, group: hair, price: 1500, duration_min: 60, keywords: [стрижка]}
  - {id: consult, name: Консультация, keywords: [консультация]}
  - {id: manicure, name: Маникюр, group: nails, duration_min: 60, keywords: [маникюр]}
hours: {mon: ["10:00-20:00"], tue: ["10:00-20:00"], wed: ["10:00-20:00"], thu: ["10:00-20:00"],
        fri: ["10:00-20:00"], sat: ["10:00-20:00"], sun: ["10:00-20:00"]}
staff:
  - {id: olga, name: Ольга, skills: [hair], shifts: {thu: ["12:00-20:00"], sat: ["12:00-18:00"]},
     breaks: ["15:00-15:30"]}
  - {id: vera, name: Вера, skills: [haircut], shifts: {sat: ["10:00-14:00"]}}
  - {id: mila, name: Мила, skills: [nails]}
  - {id: boss, name: Елена, role: manager}
booking: {enabled: true, step_min: 30, gap_min: 0, lead_time_min: 0}
"""
SATURDAY = date(2026, 12, 5)
THURSDAY = date(2026, 12, 3)
EARLY = datetime(2026, 12, 1, 9, 0, tzinfo=MSK)


def at(day: date, hhmm: str) -> datetime:
    hours, minutes = (int(p) for p in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=MSK)


def times(slots: list[Slot]) -> list[str]:
    return [f"{s.start:%H:%M} {s.master}" for s in slots]


def test_a_slot_needs_the_skill_and_the_whole_duration_on_shift_outside_breaks() -> None:
    b = business(SALON)
    slots = free_slots(b, b.service("coloring"), SATURDAY, [], now=EARLY)
    # Only Ольга colours; 90 minutes fit 12:00-15:00 before the break, 15:30-18:00 after it
    assert times(slots) == [
        "12:00 olga", "12:30 olga", "13:00 olga", "13:30 olga",
        "15:30 olga", "16:00 olga", "16:30 olga",
    ]  # fmt: skip
    haircuts = free_slots(b, b.service("haircut"), SATURDAY, [], now=EARLY)
    assert "10:00 vera" in times(haircuts) and "13:00 vera" in times(haircuts)
    assert "13:30 vera" not in times(haircuts)  # would end after her shift
    assert not any(s.master in ("mila", "boss") for s in haircuts)  # no skill; a manager books nothing


def test_bookings_and_the_gap_take_time_away() -> None:
    b = business(SALON.replace("gap_min: 0", "gap_min: 15"))
    busy = [Busy("olga", at(SATURDAY, "13:00"), at(SATURDAY, "14:30"))]
    slots = free_slots(b, b.service("coloring"), SATURDAY, busy, now=EARLY)
    # 90 min + 15 min gap before 13:00 → nothing after 11:15; after it the gap keeps 14:30-14:45 free
    assert times(slots) == ["15:30 olga", "16:00 olga", "16:30 olga"]
    assert "12:00 olga" not in times(slots)


def test_days_off_and_the_past_have_no_slots() -> None:
    b = business(SALON.replace('breaks: ["15:00-15:30"]', 'breaks: ["15:00-15:30"], days_off: [2026-12-05]'))
    assert free_slots(b, b.service("coloring"), SATURDAY, [], now=EARLY) == []
    late = at(SATURDAY, "16:10")
    b2 = business(SALON)
    assert times(free_slots(b2, b2.service("coloring"), SATURDAY, [], now=late)) == ["16:30 olga"]


def test_a_service_without_duration_has_no_slots() -> None:
    b = business(SALON)
    assert free_slots(b, b.service("consult"), SATURDAY, [], now=EARLY) == []
    assert find_offer(b, b.service("consult"), SATURDAY, SATURDAY, lambda d: []) is None


def test_up_to_three_slots_near_the_wish_in_its_window() -> None:
    b = business(SALON)
    slots = free_slots(b, b.service("haircut"), SATURDAY, [], now=EARLY)
    assert [f"{s.start:%H:%M}" for s in nearest(slots, "14:00", None, 3)] == [
        "13:00",
        "13:30",
        "14:00",
    ]  # 14:30 runs into the break
    assert [f"{s.start:%H:%M}" for s in nearest(slots, None, "after 16:00", 3)] == ["16:00", "16:30", "17:00"]
    assert [f"{s.start:%H:%M}" for s in nearest(slots, None, "morning", 3)] == ["10:00", "10:30", "11:00"]


def test_a_named_master_gets_her_slots_when_she_has_any() -> None:
    b = business(SALON)
    slots = free_slots(b, b.service("haircut"), SATURDAY, [], now=EARLY)
    assert {s.master for s in nearest(slots, "12:00", None, 3, master="vera")} == {"vera"}
    assert {s.master for s in nearest(slots, "12:00", None, 3, master="olga")} == {"olga"}


def test_no_slot_that_day_offers_the_nearest_day() -> None:
    b = business(SALON)
    friday = date(2026, 12, 4)  # nobody colours on Friday
    coloring = b.service("coloring")
    offer = find_offer(
        b, coloring, friday, friday, lambda d: free_slots(b, coloring, d, [], now=EARLY), window="evening"
    )
    assert offer is not None and offer.day == SATURDAY and not offer.on_wished_day
    assert [f"{s.start:%H:%M}" for s in offer.slots] == ["15:30", "16:00", "16:30"]  # nearest the evening


def test_a_full_day_moves_to_the_next_shift() -> None:
    b = business(SALON)
    full = [Busy("olga", at(THURSDAY, "12:00"), at(THURSDAY, "20:00"))]
    coloring = b.service("coloring")
    offer = find_offer(
        b, coloring, THURSDAY, THURSDAY,
        lambda d: free_slots(b, coloring, d, full if d == THURSDAY else [], now=EARLY),
    )  # fmt: skip
    assert offer is not None and offer.day == SATURDAY


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("давайте в 14:30", "14:30"), ("второе", "14:30"), ("в 13", "13:00"), ("в 4 можно?", "16:00"),
     ("16.00", "16:00"), ("первый вариант", "13:00"), ("последнее", "16:00"), ("а в пятницу?", None),
     ("мой номер +7 913 840-27-65", None), ("в 14.30, тел 8 (913) 840-16-00", "14:30")],
)  # fmt: skip
def test_the_clients_pick(answer: str, expected: str | None) -> None:
    offered = [Slot(at(SATURDAY, t), "olga", 90) for t in ("13:00", "14:30", "16:00")]
    chosen = picked_slot(answer, offered)
    assert (f"{chosen.start:%H:%M}" if chosen else None) == expected


def test_a_master_named_by_a_short_form() -> None:
    b = business(SALON)
    assert named_master("к Оле в четверг после 18", b) == "olga"
    assert named_master("можно к мастеру Вере?", b) == "vera"
    assert named_master("Меня зовут Ольга, хочу стрижку", b) is None  # the client's own name
    assert named_master("к вечеру", b) is None


def test_twenty_masters_fourteen_days_is_fast() -> None:
    staff = "\n".join(f"  - {{id: m{i}, name: Мастер{i}, skills: [hair]}}" for i in range(20))
    b = business(SALON.split("staff:")[0] + "staff:\n" + staff + "\nbooking: {enabled: true}\n")
    import time

    started = time.perf_counter()
    for d in range(14):
        free_slots(b, b.service("haircut"), SATURDAY + timedelta(days=d), [], now=EARLY)
    assert time.perf_counter() - started < 2.0  # generous: the bench measures it properly
