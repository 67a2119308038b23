"""Field by field, the edge cases LABELING.md spells out (received dates are +07:00, Asia/Krasnoyarsk)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from leadflow.business import BusinessConfig
from leadflow.domain.qualify.offline import qualify_offline

THU = "2026-03-12T10:00:00+07:00"  # Thursday 12 March 2026
SAT = "2026-03-14T12:00:00+07:00"
MON_16 = "2026-03-16T10:00:00+07:00"


def qualify(business: BusinessConfig, text: str, received_at: str = THU, channel: str = "telegram"):
    return qualify_offline(
        text, datetime.fromisoformat(received_at), business.services, tz=business.tz, channel=channel
    )


@pytest.mark.parametrize(
    ("text", "received_at", "expected"),
    [
        ("стрижку завтра в 15:00", THU, date(2026, 3, 13)),
        ("маникюр послезавтра", THU, date(2026, 3, 14)),
        ("маникюр сегодня", THU, date(2026, 3, 12)),
        ("маникюр на зав можно?", THU, date(2026, 3, 13)),
        ("zavtra massazh mozhno?", THU, date(2026, 3, 13)),
        ("маникюр в субботу", THU, date(2026, 3, 14)),
        ("маникюр в сб", THU, date(2026, 3, 14)),
        ("маникюр в четверг", THU, date(2026, 3, 12)),  # the named weekday is today → today
        ("маникюр в эту пятницу", THU, date(2026, 3, 13)),
        ("маникюр в следующую пятницу", THU, date(2026, 3, 20)),  # next calendar week, not tomorrow
        ("на следующей неделе во вторник массаж", THU, date(2026, 3, 17)),
        ("со следующего понедельника педикюр", SAT, date(2026, 3, 16)),
        ("стрижка 15 числа", THU, date(2026, 3, 15)),
        ("стрижка на 15 число", "2026-03-16T10:00:00+07:00", date(2026, 4, 15)),  # rolls over
        ("педикюр 20.03", THU, date(2026, 3, 20)),
        ("педикюр 21 марта", THU, date(2026, 3, 21)),
        ("педикюр 2 апреля", THU, date(2026, 4, 2)),
        ("окрашивание 5 января", "2026-12-26T10:00:00+07:00", date(2027, 1, 5)),
        ("маникюр в четверг или пятницу", MON_16, date(2026, 3, 19)),  # alternatives → the first
        ("стрижку не на завтра, а на пятницу", THU, date(2026, 3, 13)),
        ("стрижку не сегодня, а завтра", THU, date(2026, 3, 13)),
        ("v subbotu mozhno na resnicy?", THU, date(2026, 3, 14)),
        ("маникюр завтра", "2026-03-14T00:40:00+07:00", date(2026, 3, 15)),  # no night shift
    ],
)
def test_preferred_date(business: BusinessConfig, text: str, received_at: str, expected: date) -> None:
    assert qualify(business, text, received_at).preferred_date == expected


@pytest.mark.parametrize(
    "text",
    [
        "маникюр на выходных",
        "маникюр в ближайшие выходные",
        "маникюр на этой неделе",
        "маникюр на следующей неделе",
        "маникюр в будни",
        "маникюр в ближайшие дни",
        "маникюр через месяц",
        "маникюр на 17:00",  # a clock time with no date word
        "была у вас 10 марта, хочу снова на маникюр",  # a past visit
        "свадьба в воскресенье, хочу укладку",  # another event's date
        "С 8 марта вас! 🌷",
    ],
)
def test_no_preferred_date(business: BusinessConfig, text: str) -> None:
    assert qualify(business, text).preferred_date is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("стрижка завтра в 17:30", "17:30"),
        ("стрижка завтра в 6 вечера", "18:00"),
        ("массаж на 3 часа дня", "15:00"),
        ("маникюр в полтретьего", "14:30"),
        ("маникюр к 10", "10:00"),
        ("маникюр на 10 утра", "10:00"),
        ("маникюр часов в 5", "17:00"),
        ("маникюр часа в 2", "14:00"),
        ("маникюр к трём", "15:00"),
        ("маникюр к 9", "09:00"),
        ("маникюр на 11", "11:00"),
        ("маникюр на 12", "12:00"),
        ("маникюр после 18", "18:00"),
        ("маникюр после 19:00", "19:00"),
        ("manikyur posle 15", "15:00"),
        ("маникюр после 12", "12:00"),
        ("маникюр завтра в 13.30", "13:30"),
        ("маникюр в 14 или в 16", "14:00"),
        ("можно сдвинуть запись с 12 на 15:00?", "15:00"),
        ("на осмотр завтра в четыре", "16:00"),
        ("подстричься после шести вечера", "18:00"),
    ],
)
def test_preferred_time(business: BusinessConfig, text: str, expected: str) -> None:
    assert qualify(business, text).preferred_time == expected


@pytest.mark.parametrize(
    "text",
    [
        "маникюр утром",
        "маникюр с утра",
        "маникюр вечером",
        "маникюр на вечер",
        "маникюр после обеда",
        "маникюр после работы",
        "маникюр в первой половине дня",
        "подъеду через час",
        "маникюр 20.03",  # a date, not 20:03
        "шиномонтаж на 4 колеса R16",
        "ресницы 2D на 15 мая",
        "сыну 7 лет, на осмотр",
        "сколько стоит массаж, до 1500?",
    ],
)
def test_no_preferred_time(business: BusinessConfig, text: str) -> None:
    assert qualify(business, text).preferred_time is None


@pytest.mark.parametrize(
    ("text", "channel", "expected"),
    [
        ("Тел 8 913 840 27 65", "telegram", "+79138402765"),
        ("звоните +7 (913) 771-02-94", "telegram", "+79137710294"),
        ("мой номер 79233014587", "whatsapp", "+79233014587"),
        ("перезвоните: 913-123-12-12", "whatsapp", "+79131231212"),
        ("телефон мужа 8 (391) 265-40-12", "telegram", "+73912654012"),  # a city number, someone else's
        ("Звоните 8 800 100 25 25", "vk", "+78001002525"),
        (
            "клиент: номер восемь девятьсот тринадцать сто двадцать три сорок пять шестьдесят семь",
            "call_transcript",
            "+79131234567",
        ),
        (
            "оператор: диктуйте\n"
            "клиент: плюс семь девятьсот тринадцать девятьсот девяносто девять ноль ноль одиннадцать",
            "call_transcript",
            "+79139990011",
        ),
    ],
)
def test_phone(business: BusinessConfig, text: str, channel: str, expected: str) -> None:
    assert qualify(business, text, channel=channel).phone == expected


@pytest.mark.parametrize(
    "text",
    [
        "Телефон: 1111111111",  # placeholder
        "сайт для салона от 15000₽",
        "кредит до 500 000 ₽ по ставке 9,9%",
        "сертификат №004518 действителен?",
        "Киа Рио 2018, резина 205/55 R16",
        "номер машины А123ВС 124",
        "+7 701 234 56 78",  # Kazakhstan: national number starts with 7
        "оператор: наш номер 8 913 000 11 22\nклиент: спасибо",  # operator lines are not the client's
    ],
)
def test_no_phone(business: BusinessConfig, text: str) -> None:
    channel = "call_transcript" if "оператор:" in text else "telegram"
    assert qualify(business, text, channel=channel).phone is None


@pytest.mark.parametrize(
    ("text", "channel", "expected"),
    [
        ("Здравствуйте! Меня зовут Ирина, хочу на стрижку", "telegram", "Ирина"),
        ("Привет, это Дима, барбер завтра есть?", "telegram", "Дима"),
        ("Имя: Алексей Петрович\nТелефон: 8(913)044-91-17\nКомментарий:", "site_form", "Алексей"),
        ("Имя: Евгения\nТелефон: 8 923 481 07 36\nКомментарий: осмотр", "site_form", "Евгения"),
        ("можно сдвинуть с 12 на 15:00? Марина", "whatsapp", "Марина"),
        ("Хочу на педикюр в пятницу в 11, Света, 89231234455", "whatsapp", "Света"),
        ("Хочу записать маму на педикюр, Галину Ивановну", "telegram", "Галина"),
        ("Запишите на маникюр на имя Татьяны", "telegram", "Татьяна"),
        ("hochu na resnicy v subbotu, Anna", "instagram", "Anna"),
        ("оператор: как вас зовут\nклиент: Ольга Викторовна", "call_transcript", "Ольга"),
        ("оператор: на кого записать\nклиент: на Наталью", "call_transcript", "Наталья"),
    ],
)
def test_name(business: BusinessConfig, text: str, channel: str, expected: str) -> None:
    assert qualify(business, text, channel=channel).name == expected


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        ("Хочу к мастеру Ане на маникюр", "telegram"),  # staff
        ("Подруга Маша посоветовала, хочу маникюр", "telegram"),  # a friend who is not being booked
        ("запишите к Артёму на стрижку", "telegram"),
        ("оператор: салон\nклиент: алло Сергей?\nоператор: вы ошиблись", "call_transcript"),
        ("Имя: тест\nТелефон: 1111111111\nКомментарий: тест", "site_form"),
    ],
)
def test_no_name(business: BusinessConfig, text: str, channel: str) -> None:
    assert qualify(business, text, channel=channel).name is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("хочу на стрижку", "haircut_women"),
        ("подстричься бы", "haircut_women"),
        ("подстричься и покраситься", "haircut_women"),
        ("окрашивание + стрижка кончиков", "hair_coloring"),
        ("мужская стрижка машинкой", "haircut_men"),
        ("сына подстричь", "haircut_men"),
        ("хочу ноготочки", "manicure"),
        ("маникюр и педикюр", "manicure"),
        ("маникюр с покрытием", "gel_polish"),
        ("маникюр без покрытия", "manicure"),
        ("педикюр с гель-лаком", "pedicure"),
        ("в прошлый раз делала маникюр, теперь хочу педикюр", "pedicure"),
        ("брови и ресницы", "brows"),
        ("ламинирование ресниц", "lashes"),
        ("чистка лица + консультация косметолога", "facial_cleaning"),
        ("хочу к гигиенисту, air flow", "dental_cleaning"),
        ("к стоматологу, болит зуб", "dental_treatment"),
        ("пломба выпала", "dental_treatment"),
        ("хочу сыну зубы проверить", "dental_checkup"),
        ("переобуться надо", "tire_change"),
        ("колесо пробил", "tire_change"),
        ("ТО, масло и фильтры", "oil_change"),
        ("хочу на масаж", "massage"),  # a typo
    ],
)
def test_service(business: BusinessConfig, text: str, expected: str) -> None:
    assert qualify(business, text).service == expected


@pytest.mark.parametrize(
    "text",
    ["зубы отбелить сколько будет?", "запишите на диагностику подвески", "записаться можно?", "цена?"],
)
def test_service_not_in_catalog_or_not_named(business: BusinessConfig, text: str) -> None:
    assert qualify(business, text).service is None


@pytest.mark.parametrize(
    ("text", "channel", "intent"),
    [
        ("есть окошко на маникюр в субботу?", "telegram", "booking"),
        ("сколько стоит массаж спины и можно на зав на 3 часа дня?", "telegram", "booking"),
        ("хочу сыну зубы проверить, сколько стоит?", "telegram", "booking"),
        ("если до 1500, то запишите на стрижку", "telegram", "booking"),
        ("Имя: Игорь\nТелефон: 8 902 911 45 03\nКомментарий:", "site_form", "booking"),
        ("Можно перенести мою запись на послезавтра?", "telegram", "booking"),
        ("стрижка в сб?", "telegram", "booking"),
        ("подскажите стоимость замены масла, и можно ли в субботу?", "whatsapp", "booking"),
        ("сколько стоит чистка лица и сколько по времени длится?", "vk", "question"),
        ("Вы делаете ламинирование ресниц?", "telegram", "question"),
        ("добрый день скажите адрес где вы находитесь", "whatsapp", "question"),
        ("у вас можно оплатить картой?", "whatsapp", "question"),
        ("педикюр сколько стоит? мой номер 89133332211", "whatsapp", "question"),
        ("Вас беспокоит банк, для вас одобрен кредит", "whatsapp", "not_target"),
        ("Я мастер по наращиванию ресниц, рассматриваю аренду рабочего места", "vk", "not_target"),
        ("Предлагаем поставки косметики по оптовым ценам", "vk", "not_target"),
        ("оператор: алло\nклиент: алло это пиццерия?", "call_transcript", "not_target"),
        ("привет", "instagram", "not_target"),
        ("❤️", "instagram", "not_target"),
        ("Ужасное обслуживание, больше не приду", "telegram", "not_target"),
    ],
)
def test_intent(business: BusinessConfig, text: str, channel: str, intent: str) -> None:
    assert qualify(business, text, channel=channel).intent == intent


def test_temperature_follows_date_and_urgency(business: BusinessConfig) -> None:
    assert qualify(business, "маникюр послезавтра").temperature == "hot"
    assert qualify(business, "маникюр 16 марта").temperature == "warm"  # four days away
    assert qualify(business, "болит зуб, запишите к врачу").temperature == "hot"  # urgency, no date
    assert qualify(business, "маникюр в ближайшие дни").temperature == "warm"  # not urgency
    assert qualify(business, "ответьте уже! маникюр хочу").temperature == "warm"
    assert qualify(business, "сколько стоит маникюр сегодня?").temperature == "cold"


def test_not_target_has_no_service_date_or_time_but_keeps_contacts(business: BusinessConfig) -> None:
    result = qualify(
        business, "Это Анна, хочу предложить рекламу для маникюра завтра в 15:00, 8 999 555 44 33"
    )
    assert (result.intent, result.service, result.preferred_date, result.preferred_time) == (
        "not_target",
        None,
        None,
        None,
    )
    assert (result.name, result.phone) == ("Анна", "+79995554433")


def test_call_transcript_reads_only_client_lines(business: BusinessConfig) -> None:
    text = "оператор: можем завтра в 10 на маникюр\nклиент: давайте на педикюр в пятницу"
    result = qualify(business, text, channel="call_transcript")
    assert (result.service, result.preferred_date, result.preferred_time) == (
        "pedicure",
        date(2026, 3, 13),
        None,
    )


def test_today_is_the_business_date_of_received_at(business: BusinessConfig) -> None:
    # 20:00 UTC on 12 March is 03:00 on 13 March in Krasnoyarsk
    result = qualify(business, "маникюр завтра", "2026-03-12T20:00:00+00:00")
    assert result.preferred_date == date(2026, 3, 14)


def test_naive_received_at_is_refused(business: BusinessConfig) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        qualify(business, "маникюр", "2026-03-12T10:00:00")


def test_engine_is_offline_and_output_validates(business: BusinessConfig) -> None:
    result = qualify(business, "")
    assert result.engine == "offline"
    assert result.intent == "not_target"
