"""How the assistant says prices, durations, days, windows and opening hours, in Russian or English.

Russian typography: thousands apart by a narrow no-break space and the rouble sign after a no-break
space («2 000 ₽»), a decimal comma («1,5 часа»); a window is said as a window («после 18:00»,
«вечером»), never as the clock time it starts at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from leadflow.business import WEEKDAYS, Service, TimeRange, WeekHours

NBSP = "\u00a0"
NNBSP = "\u202f"  # narrow no-break space: between groups of digits

MONTHS_GEN = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
]
MONTHS_EN = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAYS_ACC = ["понедельник", "вторник", "среду", "четверг", "пятницу", "субботу", "воскресенье"]
WEEKDAYS_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WEEKDAYS_SHORT = {
    "ru": ["пн", "вт", "ср", "чт", "пт", "сб", "вс"],
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
}
DAY_NAMES = {"ru": {0: "сегодня", 1: "завтра", 2: "послезавтра"}, "en": {0: "today", 1: "tomorrow"}}
PART_OF_DAY = {
    "ru": {"morning": "утром", "afternoon": "днём", "evening": "вечером"},
    "en": {"morning": "in the morning", "afternoon": "in the afternoon", "evening": "in the evening"},
}
BOUND_WORDS = {"ru": {"after": "после", "before": "до"}, "en": {"after": "after", "before": "before"}}


# --------------------------------------------------------------------------- numbers


def thousands(amount: int) -> str:
    """12000 → «12 000» (narrow no-break spaces); four digits are grouped too, as in prices."""
    return f"{amount:,}".replace(",", NNBSP)


PRICE_RE = re.compile(
    r"^\s*(?P<from>от|from)?\s*(?P<low>\d[\d\s\u00a0\u202f]*)(?:\s*(?:-|–|—|до|to)\s*(?P<high>\d[\d\s\u00a0\u202f]*))?"
    r"\s*(?:₽|р\.?|руб\.?|рублей)?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Price:
    low: int
    high: int | None = None  # a range: «1 500–2 000 ₽»
    starting: bool = False  # «от 1 500 ₽»

    def __add__(self, other: Price) -> Price:
        high = None
        if self.high is not None or other.high is not None:
            high = (self.high or self.low) + (other.high or other.low)
        return Price(self.low + other.low, high, self.starting or other.starting)


def parse_price(value: int | str | None) -> Price | None:
    """A service's price as the owner wrote it: 1500, "от 1500", "1500-2000"; None when it is no number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Price(value)
    match = PRICE_RE.match(value)
    if not match:
        return None
    low = int(re.sub(r"\D", "", match.group("low")))
    high = int(re.sub(r"\D", "", match.group("high"))) if match.group("high") else None
    return Price(low, high, bool(match.group("from")))


def say_price(price: Price, language: str = "ru") -> str:
    """«2 000 ₽», «от 1 500 ₽», «1 500–2 000 ₽»."""
    amount = thousands(price.low) + (f"–{thousands(price.high)}" if price.high is not None else "")
    prefix = ("from " if language == "en" else "от ") if price.starting and price.high is None else ""
    return f"{prefix}{amount}{NBSP}₽"


def price_text(value: int | str | None, language: str = "ru") -> str | None:
    """A service's price for a reply: formatted when it is a number, as written when it is words."""
    price = parse_price(value)
    if price is not None:
        return say_price(price, language)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _plural(n: int, one: str, few: str, many: str) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def say_duration(minutes: int, language: str = "ru") -> str:
    """90 → «1,5 часа», 45 → «45 минут», 75 → «1 час 15 минут», 120 → «2 часа» (English alike)."""
    hours, rest = divmod(minutes, 60)
    if language == "en":
        if hours and rest == 30:
            return f"{hours}.5 hours"
        parts = []
        if hours:
            parts.append(f"{hours} hour" + ("s" if hours > 1 else ""))
        if rest or not hours:
            parts.append(f"{rest} minute" + ("s" if rest != 1 else ""))
        return " ".join(parts)
    if hours and rest == 30:
        return f"{hours},5{NBSP}часа"  # a fraction takes the genitive singular: «1,5 часа», «2,5 часа»
    parts = []
    if hours:
        parts.append(f"{hours}{NBSP}{_plural(hours, 'час', 'часа', 'часов')}")
    if rest or not hours:
        parts.append(f"{rest}{NBSP}{_plural(rest, 'минута', 'минуты', 'минут')}")
    return " ".join(parts)


def service_facts(services: Sequence[Service], language: str = "ru") -> str | None:
    """«3 000 ₽, 2 часа 15 минут»: price and duration added up over the services; a part nobody
    knows for every service is left out rather than guessed."""
    prices = [parse_price(s.price) for s in services]
    facts = []
    if services and all(p is not None for p in prices):
        total = prices[0]
        for price in prices[1:]:
            total = total + price  # type: ignore[operator]
        facts.append(say_price(total, language))  # type: ignore[arg-type]
    elif len(services) == 1 and isinstance(services[0].price, str) and services[0].price.strip():
        facts.append(services[0].price.strip())  # «по договорённости»: as the owner wrote it
    durations = [s.duration_min for s in services]
    if services and all(durations):
        facts.append(say_duration(sum(durations), language))  # type: ignore[arg-type]
    return ", ".join(facts) or None


def service_name(service: Service, language: str = "ru") -> str:
    return (service.name_en or service.name) if language == "en" else service.name


# --------------------------------------------------------------------------- days, windows, times


def describe_day(day: date, today: date | None, language: str = "ru", *, with_date: bool = False) -> str:
    """«завтра», «в субботу, 14 марта»; ``with_date``: «завтра, 14 марта» (a card lives for days).
    ``today`` None: no «сегодня»/«завтра» at all, the day by its date."""
    delta = (day - today).days if today is not None else None
    if language == "en":
        named = DAY_NAMES["en"].get(delta) if delta is not None else None
        dated = f"{WEEKDAYS_EN[day.weekday()]}, {day.day} {MONTHS_EN[day.month - 1]}"
        if named:
            return f"{named}, {dated}" if with_date else named
        return f"on {dated}"
    named = DAY_NAMES["ru"].get(delta) if delta is not None else None
    dated = f"{day.day} {MONTHS_GEN[day.month - 1]}"
    if named:
        return f"{named}, {dated}" if with_date else named
    prefix = "во" if day.weekday() == 1 else "в"
    return f"{prefix} {WEEKDAYS_ACC[day.weekday()]}, {dated}"


def describe_window(window: str, language: str = "ru") -> str:
    """`evening` → «вечером»; `after 18:00` → «после 18:00»; `before 12:00` → «до 12:00»."""
    part = PART_OF_DAY.get(language, PART_OF_DAY["ru"]).get(window)
    if part:
        return part
    bound, _, at = window.partition(" ")
    return f"{BOUND_WORDS.get(language, BOUND_WORDS['ru']).get(bound, bound)} {at}"


def describe_time(preferred_time: str | None, window: str | None, language: str = "ru") -> str:
    """The time part: a bound is said as the bound («после 18:00», not «в 18:00»); a clock time with
    a part of the day is the clock time («вечером в 7» → «в 19:00»)."""
    if window and (window.startswith(("after ", "before ")) or not preferred_time):
        return describe_window(window, language)
    if preferred_time:
        return f"{'at' if language == 'en' else 'в'} {preferred_time}"
    return ""


def describe_when(
    day: date | None,
    preferred_time: str | None,
    window: str | None,
    today: date | None,
    language: str = "ru",
    *,
    with_date: bool = False,
) -> str:
    """«в субботу, 14 марта, после 18:00», «завтра вечером», «завтра в 15:00», «после 18:00»."""
    day_part = describe_day(day, today, language, with_date=with_date) if day else ""
    time_part = describe_time(preferred_time, window, language)
    if day_part and time_part:
        return f"{day_part}{',' if ',' in day_part else ''} {time_part}"
    return day_part or time_part


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------- opening hours


def day_hours(ranges: Sequence[TimeRange], language: str = "ru") -> str:
    """«с 10:00 до 20:00», «с 10:00 до 14:00 и с 15:00 до 20:00» ("10:00–20:00" in English)."""
    if language == "en":
        return " and ".join(f"{r.start}–{r.end}" for r in ranges)
    return " и ".join(f"с {r.start} до {r.end}" for r in ranges)


def week_hours(hours: WeekHours, language: str = "ru") -> str:
    """«пн–пт 09:00–21:00, сб 10:00–20:00, вс — выходной»: neighbouring days with one schedule grouped."""
    short = WEEKDAYS_SHORT.get(language, WEEKDAYS_SHORT["ru"])
    closed = "closed" if language == "en" else "выходной"
    groups: list[tuple[int, int, str]] = []
    for i, weekday in enumerate(WEEKDAYS):
        ranges = hours.get(weekday) or []
        said = ", ".join(f"{r.start}–{r.end}" for r in ranges) or closed
        if groups and groups[-1][2] == said and groups[-1][1] == i - 1:
            groups[-1] = (groups[-1][0], i, said)
        else:
            groups.append((i, i, said))
    parts = []
    for first, last, said in groups:
        days = short[first] if first == last else f"{short[first]}–{short[last]}"
        parts.append(f"{days} — {said}" if said == closed and language != "en" else f"{days} {said}")
    return ", ".join(parts)
