"""The booking as an iCalendar file, checked against RFC 5545's rules: CRLF line ends, lines of at
most 75 octets folded with a leading space (never inside a UTF-8 character), TEXT escaping of
backslash, semicolon, comma and newlines, UTC date-times, one VEVENT whose UID is the lead's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from leadflow.domain import lifecycle
from leadflow.domain.ics import booking_calendar, escape_text, fold
from tests.support.builders import business, lead

SALON = """
name: "Салон «Лаванда»; студия, центр"
timezone: Asia/Krasnoyarsk
services:
  - {id: coloring, name: Окрашивание волос, price: 4500, duration_min: 90, keywords: [окрашивание]}
  - {id: consult, name: Консультация, keywords: [консультация]}
branches:
  - id: center
    address: "г. Красноярск, ул. Ленина, 1; офис 2"
    directions: |-
      Вход со двора, домофон 2\\B.
      Второй этаж, дверь с вывеской «Лаванда» — длинное описание, чтобы строка точно не уместилась в 75 октетов
staff:
  - {id: olga, name: Ольга, branch: center}
"""
NOW = datetime(2026, 3, 10, 1, 2, 3, tzinfo=UTC)
SAT_1430_KRS = datetime(2026, 3, 14, 7, 30, tzinfo=UTC)  # 14:30 in Krasnoyarsk


def unfold(text: str) -> list[str]:
    """RFC 5545 3.1: a CRLF followed by one space or tab is removed."""
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", ""), "a bare LF"
    assert "\r" not in text.replace("\r\n", ""), "a bare CR"
    return re.sub(r"\r\n[ \t]", "", text).split("\r\n")[:-1]


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def properties(text: str) -> dict[str, str]:
    lines = unfold(text)
    return {name: value for name, _, value in (line.partition(":") for line in lines)}


def test_a_booking_is_one_utc_event_with_the_service_the_salon_and_the_address() -> None:
    b = business(SALON)
    booked = lead(
        "L-42", service="coloring", appointment_at=SAT_1430_KRS, booked_master="olga", status="booked"
    )
    text = booking_calendar(booked, b, NOW)
    assert text is not None
    lines = unfold(text)
    assert lines[:2] == ["BEGIN:VCALENDAR", "VERSION:2.0"]
    assert lines[-1] == "END:VCALENDAR" and lines.count("BEGIN:VEVENT") == 1 == lines.count("END:VEVENT")
    props = properties(text)
    assert props["UID"] == "L-42@leadflow"
    assert props["DTSTAMP"] == "20260310T010203Z"
    assert props["DTSTART"] == "20260314T073000Z"
    assert props["DTEND"] == "20260314T090000Z"  # 90 minutes of colouring
    assert unescape(props["SUMMARY"]) == "Окрашивание волос — Салон «Лаванда»; студия, центр"
    assert props["SUMMARY"].endswith("Салон «Лаванда»\\; студия\\, центр")
    assert unescape(props["LOCATION"]) == "г. Красноярск, ул. Ленина, 1; офис 2"
    assert unescape(props["DESCRIPTION"]).startswith("Вход со двора, домофон 2\\B.\nВторой этаж")
    assert "\\\\B" in props["DESCRIPTION"] and "\\n" in props["DESCRIPTION"]


def test_every_physical_line_is_at_most_75_octets_and_folding_keeps_utf8_whole() -> None:
    b = business(SALON)
    booked = lead(
        "L-42", service="coloring", appointment_at=SAT_1430_KRS, booked_master="olga", status="booked"
    )
    text = booking_calendar(booked, b, NOW)
    assert text is not None
    physical = text.split("\r\n")[:-1]
    assert any(line.startswith(" ") for line in physical), "the long description was not folded"
    for line in physical:
        assert len(line.encode("utf-8")) <= 75, line
        line.encode("utf-8").decode("utf-8")  # each physical line is whole UTF-8 on its own


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_fold_splits_at_75_octets_whatever_the_character_width(width: int) -> None:
    char = {1: "a", 2: "ж", 3: "€", 4: "😀"}[width]
    line = "DESCRIPTION:" + char * 200
    folded = fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode()) <= 75 for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert len(parts[0].encode()) > 75 - width  # filled as far as the next character allows
    assert "".join([parts[0], *(p[1:] for p in parts[1:])]) == line


def test_a_short_line_is_not_folded() -> None:
    assert fold("A" * 75) == "A" * 75
    assert fold("A" * 76) == "A" * 75 + "\r\n A"


def test_text_escaping() -> None:
    assert escape_text("a\\b;c,d\ne\r\nf") == "a\\\\b\\;c\\,d\\ne\\nf"
    assert unescape(escape_text("x\\;,\n")) == "x\\;,\n"


def test_a_service_without_a_duration_lasts_an_hour_and_no_address_leaves_location_out() -> None:
    b = business(SALON.split("branches:")[0])
    booked = lead("L-7", service="consult", appointment_at=SAT_1430_KRS, status="booked")
    props = properties(booking_calendar(booked, b, NOW) or "")
    assert props["DTEND"] == "20260314T083000Z"
    assert "LOCATION" not in props and "DESCRIPTION" not in props


def test_no_event_without_an_appointment() -> None:
    b = business(SALON)
    assert booking_calendar(lead("L-1", service="coloring"), b, NOW) is None


def test_a_booking_starts_at_sequence_0_and_each_move_bumps_it() -> None:
    b = business(SALON)
    booked = lifecycle.book(lead("L-3", service="coloring"), SAT_1430_KRS, "olga", NOW)
    assert booked is not None and booked.calendar_sequence == 0
    assert properties(booking_calendar(booked, b, NOW) or "")["SEQUENCE"] == "0"
    assert lifecycle.book(booked, SAT_1430_KRS, "olga", NOW) is None  # the same time again: no change
    moved = lifecycle.book(booked, SAT_1430_KRS + timedelta(hours=1), "olga", NOW)
    assert moved is not None and moved.calendar_sequence == 1
    props = properties(booking_calendar(moved, b, NOW) or "")
    assert (props["SEQUENCE"], props["DTSTART"], props["METHOD"]) == ("1", "20260314T083000Z", "PUBLISH")


@pytest.mark.parametrize("status", ["cancelled", "lost"])
def test_a_cancelled_visit_is_a_cancel_of_the_same_event_with_a_higher_sequence(status: str) -> None:
    # RFC 5546 3.2.5: METHOD:CANCEL, the same UID, a SEQUENCE above the last one sent; RFC 5545
    # 3.8.1.11: STATUS:CANCELLED — a calendar that imported the visit removes or strikes it out
    b = business(SALON)
    moved = lead("L-4", service="coloring", appointment_at=SAT_1430_KRS, status="booked", calendar_sequence=2)
    published = properties(booking_calendar(moved, b, NOW) or "")
    gone = moved.model_copy(update={"status": status})
    text = booking_calendar(gone, b, NOW) or ""
    lines = unfold(text)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert lines.count("BEGIN:VEVENT") == 1
    props = properties(text)
    assert props["METHOD"] == "CANCEL" and props["STATUS"] == "CANCELLED"
    assert props["UID"] == published["UID"] == "L-4@leadflow"
    assert int(props["SEQUENCE"]) > int(published["SEQUENCE"])
    assert props["DTSTART"] == published["DTSTART"]
