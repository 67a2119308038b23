"""How the assistant writes prices, durations, days, windows and hours (Russian typography, English too)."""

from __future__ import annotations

from datetime import date

import pytest

from leadflow.business import Service, TimeRange
from leadflow.domain.wording import (
    describe_day,
    describe_when,
    describe_window,
    parse_price,
    price_text,
    say_duration,
    service_facts,
    week_hours,
)

NB, NN = "\u00a0", "\u202f"  # no-break space before ₽; narrow no-break space between digit groups
SATURDAY = date(2026, 3, 14)


@pytest.mark.parametrize(
    ("price", "said"),
    [
        (2000, f"2{NN}000{NB}₽"),
        (900, f"900{NB}₽"),
        (12500, f"12{NN}500{NB}₽"),
        (150000, f"150{NN}000{NB}₽"),
        ("от 1500", f"от 1{NN}500{NB}₽"),
        ("от 1 500 ₽", f"от 1{NN}500{NB}₽"),
        ("1500-2000", f"1{NN}500–2{NN}000{NB}₽"),
        ("1500 руб", f"1{NN}500{NB}₽"),
        ("по договорённости", "по договорённости"),
        (None, None),
    ],
)
def test_prices_are_written_the_russian_way(price, said):
    assert price_text(price) == said


def test_an_english_starting_price_says_from():
    assert price_text("от 1500", "en") == f"from 1{NN}500{NB}₽"


@pytest.mark.parametrize(
    ("minutes", "ru", "en"),
    [
        (90, f"1,5{NB}часа", "1.5 hours"),
        (45, f"45{NB}минут", "45 minutes"),
        (60, f"1{NB}час", "1 hour"),
        (120, f"2{NB}часа", "2 hours"),
        (75, f"1{NB}час 15{NB}минут", "1 hour 15 minutes"),
        (135, f"2{NB}часа 15{NB}минут", "2 hours 15 minutes"),
        (150, f"2,5{NB}часа", "2.5 hours"),
        (300, f"5{NB}часов", "5 hours"),
        (21, f"21{NB}минута", "21 minutes"),
        (22, f"22{NB}минуты", "22 minutes"),
        (1, f"1{NB}минута", "1 minute"),
    ],
)
def test_durations_are_said_as_people_say_them(minutes, ru, en):
    assert say_duration(minutes) == ru
    assert say_duration(minutes, "en") == en


def test_several_services_add_up_their_prices_and_durations():
    manicure = Service(id="m", name="Маникюр", price=1200, duration_min=60)
    pedicure = Service(id="p", name="Педикюр", price=1800, duration_min=75)
    assert service_facts([manicure, pedicure]) == f"3{NN}000{NB}₽, 2{NB}часа 15{NB}минут"


def test_a_starting_price_stays_a_starting_price_in_the_sum():
    coloring = Service(id="c", name="Окрашивание", price="от 4500", duration_min=180)
    cut = Service(id="h", name="Стрижка", price=1500, duration_min=60)
    assert service_facts([coloring, cut]) == f"от 6{NN}000{NB}₽, 4{NB}часа"


def test_a_sum_leaves_out_what_one_service_does_not_say():
    known = Service(id="a", name="A", price=1000, duration_min=30)
    unknown = Service(id="b", name="B", duration_min=30)
    assert service_facts([known, unknown]) == f"1{NB}час"  # no price guessed for B


def test_parse_price_keeps_the_owners_meaning():
    assert parse_price("от 1500").starting and parse_price("1500-2000").high == 2000
    assert parse_price("бесплатно") is None


@pytest.mark.parametrize(
    ("window", "ru", "en"),
    [
        ("after 18:00", "после 18:00", "after 18:00"),
        ("before 12:00", "до 12:00", "before 12:00"),
        ("evening", "вечером", "in the evening"),
        ("morning", "утром", "in the morning"),
        ("afternoon", "днём", "in the afternoon"),
    ],
)
def test_a_window_is_said_as_a_window(window, ru, en):
    assert describe_window(window) == ru
    assert describe_window(window, "en") == en


def test_after_18_is_never_turned_into_at_18():
    # «после 18» gives the time 18:00 and the window; the window is what the client said
    assert (
        describe_when(date(2026, 3, 21), "18:00", "after 18:00", SATURDAY)
        == "в субботу, 21 марта, после 18:00"
    )
    assert describe_when(date(2026, 3, 15), None, "evening", SATURDAY) == "завтра вечером"
    assert describe_when(date(2026, 3, 15), "19:00", "evening", SATURDAY) == "завтра в 19:00"
    assert describe_when(date(2026, 3, 15), "15:00", None, SATURDAY) == "завтра в 15:00"
    assert describe_when(None, "18:00", "after 18:00", SATURDAY) == "после 18:00"


def test_days_relative_to_the_day_the_message_was_written():
    assert describe_day(date(2026, 3, 15), SATURDAY) == "завтра"
    assert describe_day(date(2026, 3, 17), SATURDAY) == "во вторник, 17 марта"
    assert describe_day(date(2026, 3, 15), SATURDAY, with_date=True) == "завтра, 15 марта"
    assert describe_day(date(2026, 3, 15), None) == "в воскресенье, 15 марта"  # no «завтра» without a day
    assert describe_day(date(2026, 3, 15), SATURDAY, "en") == "tomorrow"
    assert describe_day(date(2026, 3, 18), SATURDAY, "en") == "on Wednesday, 18 March"


def test_opening_hours_group_days_with_one_schedule():
    hours = {
        **{d: [TimeRange(start="09:00", end="21:00")] for d in ("mon", "tue", "wed", "thu", "fri")},
        "sat": [TimeRange(start="10:00", end="20:00")],
    }
    assert week_hours(hours) == "пн–пт 09:00–21:00, сб 10:00–20:00, вс — выходной"  # type: ignore[arg-type]
    assert week_hours(hours, "en") == "Mon–Fri 09:00–21:00, Sat 10:00–20:00, Sun closed"  # type: ignore[arg-type]
