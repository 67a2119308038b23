"""Phrases people write (LABELING.md, second edition): parts of the day and bounds, half hours, relative
spans, a time already past, several services, run-on voice-like text, emoji, English.

Received dates are +07:00 (Asia/Krasnoyarsk); THU is Thursday 12 March 2026, 10:00.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from leadflow.business import BusinessConfig
from leadflow.domain.models import Qualification
from leadflow.domain.qualify.offline import qualify_offline

THU = "2026-03-12T10:00:00+07:00"
THU_AFTERNOON = "2026-03-12T15:20:00+07:00"
SUN = "2026-03-15T11:00:00+07:00"


def qualify(
    business: BusinessConfig, text: str, received_at: str = THU, channel: str = "telegram"
) -> Qualification:
    return qualify_offline(
        text, datetime.fromisoformat(received_at), business.services, tz=business.tz, channel=channel
    )


# --------------------------------------------------------------------------- parts of the day and bounds


@pytest.mark.parametrize(
    ("text", "window", "time"),
    [
        ("педикюр в понедельник с утречка", "morning", None),
        ("массаж завтра утром, если есть", "morning", None),
        ("на брови в первой половине дня в субботу", "morning", None),
        ("стрижку до обеда можно?", "morning", None),
        ("маникюр в среду пораньше", "morning", None),
        ("окрашивание в субботу днём", "afternoon", None),
        ("переобуться после обеда сегодня", "afternoon", None),
        ("чистку лица во второй половине дня", "afternoon", None),
        ("ресницы в пятницу в обед", "afternoon", None),
        ("педикюр на вечер во вторник", "evening", None),
        ("массаж после работы в четверг", "evening", None),
        ("стрижка к концу дня в пятницу", "evening", None),
        ("шеллак сегодня вечерком", "evening", None),
        ("маникюр в субботу после 17", "after 17:00", "17:00"),
        ("массаж завтра после 19:30", "after 19:30", "19:30"),
        ("брови в пятницу после 4", "after 16:00", "16:00"),  # the bare-hour rule: 4 → 16
        ("массаж в субботу не раньше 11", "after 11:00", "11:00"),
        ("чистка лица в понедельник с 14", "after 14:00", "14:00"),
        ("педикюр во вторник до 13", "before 13:00", None),  # an upper bound is no clock time
        ("масло поменять завтра не позже 16:00", "before 16:00", None),
        ("брови в среду до 2 часов", "before 14:00", None),
        ("маникюр в пятницу не позднее 10 утра", "before 10:00", None),
        ("маникюр в пятницу до полседьмого", "before 18:30", None),
        ("брови в пятницу где-то после 16", "after 16:00", "16:00"),
        ("массаж на послезавтра не раньше обеда", "afternoon", None),
        ("брови в субботу утро", "morning", None),
        ("маникюр с 10-12 завтра", "after 10:00", "10:00"),  # a range: its start is the bound
    ],
)
def test_window_and_time(business: BusinessConfig, text: str, window: str, time: str | None) -> None:
    result = qualify(business, text)
    assert (result.preferred_window, result.preferred_time) == (window, time)


@pytest.mark.parametrize(
    ("text", "window", "time"),
    [
        ("педикюр завтра вечером часов в 8", "evening", "20:00"),  # the window reads the bare hour too
        ("массаж в субботу утром в 7", "morning", "07:00"),
        ("стрижка завтра в 7 вечера", None, "19:00"),  # a time with its own part of the day is only the time
        ("маникюр в пятницу в 10 утра", None, "10:00"),
        ("брови завтра к 16:00", None, "16:00"),  # «к» is a clock time, not a bound
        ("стрижка в пятницу после обеда или в субботу утром", "afternoon", None),  # alternatives: the first
        ("маникюр в субботу, только не утром, а вечером", "evening", None),
        ("Добрый вечер! маникюр в субботу", None, None),  # a greeting is no window
        ("маникюр в понедельник", None, None),
    ],
)
def test_window_next_to_a_time_or_a_greeting(
    business: BusinessConfig, text: str, window: str | None, time: str | None
) -> None:
    result = qualify(business, text)
    assert (result.preferred_window, result.preferred_time) == (window, time)


def test_a_question_gets_its_window_and_a_not_target_none(business: BusinessConfig) -> None:
    question = qualify(business, "вы в воскресенье вечером работаете?")
    assert (question.intent, question.preferred_date, question.preferred_window) == (
        "question",
        date(2026, 3, 15),
        "evening",
    )
    spam = qualify(business, "Продвижение салонов в соцсетях, звоните вечером после 18")
    assert (spam.intent, spam.preferred_window, spam.preferred_time) == ("not_target", None, None)


def test_prices_ages_and_date_ranges_are_no_bounds(business: BusinessConfig) -> None:
    assert qualify(business, "если выйдет до 2000, запишите на маникюр").preferred_window is None
    assert qualify(business, "детям до 12 лет стрижка дешевле?").preferred_window is None
    assert qualify(business, "маникюр до 20 числа").preferred_window is None


# --------------------------------------------------------------------------- half hours and noon


@pytest.mark.parametrize(
    ("text", "time"),
    [
        ("стрижка завтра в пол 10", "09:30"),
        ("стрижка завтра в полдесятого", "09:30"),
        ("стрижка завтра в пол10", "09:30"),
        ("маникюр в субботу пол-пятого", "16:30"),
        ("маникюр в субботу в пол 5", "16:30"),  # the bare-hour rule first: 5 → 17, half past 16
        ("массаж в пятницу в пол 8 вечера", "19:30"),
        ("брови завтра в пол 12", "11:30"),
        ("брови завтра в пол первого", "12:30"),
        ("массаж в среду в полдень", "12:00"),
        ("стрижку в понедельник в районе 3", "15:00"),
        ("массаж завтра в 10-30", "10:30"),
    ],
)
def test_half_hours_and_noon(business: BusinessConfig, text: str, time: str) -> None:
    result = qualify(business, text)
    assert (result.preferred_time, result.preferred_window) == (time, None)


# --------------------------------------------------------------------------- relative spans


@pytest.mark.parametrize(
    ("text", "received_at", "expected"),
    [
        ("маникюр через неделю", THU, date(2026, 3, 19)),
        ("маникюр через недельку", THU, date(2026, 3, 19)),
        ("педикюр через 2 дня", THU, date(2026, 3, 14)),
        ("педикюр через два дня", THU, date(2026, 3, 14)),
        ("массаж через день", THU, date(2026, 3, 14)),  # «через день» = +2
        ("брови через 3 недели", THU, date(2026, 4, 2)),
        ("ресницы через две недели вечером", THU, date(2026, 3, 26)),
        ("чистку лица через 10 дней", THU, date(2026, 3, 22)),
        ("стрижку на следующей неделе в среду", THU, date(2026, 3, 18)),
        ("стрижку на следующей неделе в среду", SUN, date(2026, 3, 18)),  # Sunday: next week starts tomorrow
        ("массаж в следующий понедельник", SUN, date(2026, 3, 16)),
        ("маникюр дня через три", THU, date(2026, 3, 15)),
        ("педикюр через 2-3 дня", THU, date(2026, 3, 14)),  # the first
        ("массаж в среду следующей недели", THU, date(2026, 3, 18)),
        ("маникюр через месяц", THU, None),  # vague
        ("стрижка через несколько дней", THU, None),
        ("маникюр через час", THU, None),  # a relative time, no date
    ],
)
def test_relative_spans(business: BusinessConfig, text: str, received_at: str, expected: date | None) -> None:
    assert qualify(business, text, received_at).preferred_date == expected


def test_a_span_is_near_enough_to_be_hot(business: BusinessConfig) -> None:
    assert qualify(business, "хочу на педикюр через 2 дня").temperature == "hot"
    assert qualify(business, "хочу на педикюр через неделю").temperature == "warm"


def test_a_correction_keeps_the_day_said_last(business: BusinessConfig) -> None:
    assert qualify(business, "массаж через 2 дня… хотя нет, лучше завтра").preferred_date == date(2026, 3, 13)


# --------------------------------------------------------------------------- a time already past today


def test_a_time_already_past_today_stays_as_written(business: BusinessConfig) -> None:
    result = qualify(business, "маникюр сегодня в 9 утра можно?", THU_AFTERNOON)
    assert (result.intent, result.preferred_date, result.preferred_time) == (
        "booking",
        date(2026, 3, 12),
        "09:00",
    )
    assert result.temperature == "hot"


# --------------------------------------------------------------------------- several services


@pytest.mark.parametrize(
    ("text", "services"),
    [
        ("маникюр+педикюр в субботу", ["manicure", "pedicure"]),
        ("хочу педикюр и маникюр", ["pedicure", "manicure"]),  # in the order mentioned
        ("брови и ресницы завтра", ["brows", "lashes"]),
        ("ламинирование ресниц и бровей", ["lashes", "brows"]),
        ("покраска бровей и ресниц в пятницу", ["brows", "lashes"]),
        ("брови окрашивание и коррекция", ["brows"]),  # «окрашивание» next to brows is brow tint
        ("окрашивание корней и подровнять кончики", ["hair_coloring", "haircut_women"]),
        ("стрижка и борода машинкой", ["haircut_men"]),  # a beard is a male cue, no service of its own
        ("маникюр без покрытия и педикюр", ["manicure", "pedicure"]),  # «без покрытия» is no gel polish
        ("маникюр с покрытием и педикюр", ["gel_polish", "pedicure"]),
        ("мне педикюр, а дочке стрижку", ["pedicure", "haircut_women"]),  # for another person: listed
        ("замена масла и шиномонтаж в субботу", ["oil_change", "tire_change"]),
        ("чистка зубов и осмотр", ["dental_cleaning", "dental_checkup"]),
        ("массаж спины, чистка лица и маникюр", ["massage", "facial_cleaning", "manicure"]),
        ("в прошлый раз делала маникюр, теперь хочу педикюр", ["pedicure"]),  # past context is no wish
    ],
)
def test_several_services_in_order(business: BusinessConfig, text: str, services: list[str]) -> None:
    result = qualify(business, text)
    assert result.services == services
    assert result.service == services[0]


def test_services_is_empty_exactly_when_service_is_null(business: BusinessConfig) -> None:
    for text in ("записаться можно?", "цена?", "хочу отбелить зубы"):
        result = qualify(business, text)
        assert (result.service, result.services) == (None, [])


def test_a_redo_of_a_past_service_is_that_service(business: BusinessConfig) -> None:
    assert qualify(business, "была у вас на маникюре, хочу снова в субботу").services == ["manicure"]
    assert qualify(business, "вчера делала брови, криво, переделайте пожалуйста").services == ["brows"]


# --------------------------------------------------------------------------- run-on voice-like text


def test_run_on_text_with_a_clear_wish_is_a_booking(business: BusinessConfig) -> None:
    text = (
        "алло девушка здравствуйте короче я хотела бы записаться на педикюр и на маникюр если можно в субботу "
        "с утра потому что в прошлый раз мастер очень долго делала и я опоздала на работу а меня Ольга зовут"
    )
    result = qualify(business, text)
    assert (result.intent, result.services) == ("booking", ["pedicure", "manicure"])
    assert (result.preferred_date, result.preferred_window, result.name) == (
        date(2026, 3, 14),
        "morning",
        "Ольга",
    )


def test_run_on_text_that_never_did_the_service_still_wants_it(business: BusinessConfig) -> None:
    text = "я никогда не делала массаж спины и вот думаю попробовать можно через неделю после работы"
    result = qualify(business, text)
    assert (result.intent, result.services) == ("booking", ["massage"])
    assert (result.preferred_date, result.preferred_window) == (date(2026, 3, 19), "evening")


def test_not_earlier_is_no_past(business: BusinessConfig) -> None:
    result = qualify(business, "массаж в пятницу не раньше 7 вечера")
    assert (result.services, result.preferred_date, result.preferred_time) == (
        ["massage"],
        date(2026, 3, 13),
        "19:00",
    )


# --------------------------------------------------------------------------- emoji, thanks, questions


@pytest.mark.parametrize("text", ["❤️❤️", "👍🏻", "🔥🔥🔥", "😘", "💅🏼✨"])
def test_emoji_only_is_not_target(business: BusinessConfig, text: str) -> None:
    result = qualify(business, text, channel="instagram")
    assert (result.intent, result.temperature, result.services) == ("not_target", "cold", [])


@pytest.mark.parametrize(
    "text",
    [
        "Спасибо Кате за стрижку, всё очень понравилось!",
        "благодарю за педикюр, очень довольна 🌸",
        "Thank you, see you!",
    ],
)
def test_thanks_or_praise_without_a_request_is_not_target(business: BusinessConfig, text: str) -> None:
    assert qualify(business, text).intent == "not_target"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("почем наращивание ресниц?", "question"),
        ("сколько стоит лечение кариеса? перезвоните 89131234567", "question"),  # a phone left for the answer
        ("маникюр, перезвоните 89131234567", "booking"),  # a callback for a service is a booking
        ("а в субботу с какого часа работаете?", "question"),
        ("есть ли парковка, можно прийти с собакой?", "question"),
        ("Стрижка в пятницу, сколько по времени займёт?", "booking"),  # asked for on a day, with a question
        ("сколько стоит маникюр и есть ли время завтра после 15", "booking"),
        ("подскажите, пожалуйста, сколько стоит чистка лица?", "question"),
        ("брови в пятницу где-то после 16", "booking"),
    ],
)
def test_questions_and_bookings(business: BusinessConfig, text: str, intent: str) -> None:
    assert qualify(business, text).intent == intent


# --------------------------------------------------------------------------- English


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Can I book a haircut tomorrow at 11?",  # «haircut» alone is no catalog keyword
            {
                "intent": "booking",
                "services": [],
                "preferred_date": date(2026, 3, 13),
                "preferred_time": "11:00",
            },
        ),
        (
            "Hello, my name is Anna. Lashes on Saturday morning please",
            {
                "services": ["lashes"],
                "preferred_date": date(2026, 3, 14),
                "preferred_window": "morning",
                "name": "Anna",
            },
        ),
        (
            "I'd like a men's haircut next Tuesday after 6pm",
            {
                "services": ["haircut_men"],
                "preferred_date": date(2026, 3, 17),
                "preferred_time": "18:00",
                "preferred_window": "after 18:00",
            },
        ),
        (
            "Hi, I'm Olivia. Eyebrows and lash extensions on Friday at 2pm?",
            {"services": ["brows", "lashes"], "preferred_date": date(2026, 3, 13), "preferred_time": "14:00"},
        ),
        (
            "could I come for a facial in 3 days, no later than 1pm",
            {"services": ["facial_cleaning"], "preferred_date": date(2026, 3, 15), "preferred_time": None},
        ),
        ("a beard trim on Sunday afternoon?", {"services": ["haircut_men"], "preferred_window": "afternoon"}),
        ("balayage in two weeks", {"services": ["hair_coloring"], "preferred_date": date(2026, 3, 26)}),
        ("brows the day after tomorrow", {"preferred_date": date(2026, 3, 14)}),
        ("Good morning! brows at 10am today?", {"preferred_time": "10:00", "preferred_window": None}),
        (
            "how much is a facial?",
            {"intent": "question", "temperature": "cold", "services": ["facial_cleaning"]},
        ),
        (
            "what are your opening hours on Monday?",
            {"intent": "question", "preferred_date": date(2026, 3, 16)},
        ),
        ("Do you accept cards?", {"intent": "question"}),
        ("lashes tmrw?", {"intent": "booking", "services": ["lashes"], "preferred_date": date(2026, 3, 13)}),
        ("please call me back about the balayage price", {"intent": "question"}),
        ("brows between 2 and 4 on Saturday", {"preferred_time": "14:00", "preferred_window": "after 14:00"}),
        ("Thanks so much!", {"intent": "not_target"}),
    ],
)
def test_english(business: BusinessConfig, text: str, expected: dict) -> None:
    result = qualify(business, text).model_dump()
    assert {key: result[key] for key in expected} == expected


def test_transliterated_russian_is_still_russian(business: BusinessConfig) -> None:
    result = qualify(business, "zavtra na brovi posle 15 mozhno?")
    assert (result.services, result.preferred_date, result.preferred_time) == (
        ["brows"],
        date(2026, 3, 13),
        "15:00",
    )
    assert result.preferred_window == "after 15:00"
