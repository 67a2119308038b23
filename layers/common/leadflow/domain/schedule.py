"""Free slots: who can do a service when, from the masters' shifts, breaks and days off, the
service's duration and the bookings already made (plus a gap after each); the few slots nearest
to what the client wished; and which offered slot the client's answer picks.

Pure: the bookings come in as `Busy` intervals, read by a booking adapter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from leadflow.business import BusinessConfig, Service, StaffMember
from leadflow.domain.assignment import shift_calendar
from leadflow.domain.qualify.morphology import morph
from leadflow.domain.rules import works_in

# Common short forms of Russian first names: «к Оле» means Ольга.
SHORT_NAMES = {
    "оля": "ольга", "аня": "анна", "катя": "екатерина", "маша": "мария", "лена": "елена",
    "наташа": "наталья", "света": "светлана", "таня": "татьяна", "юля": "юлия", "настя": "анастасия",
    "ира": "ирина", "даша": "дарья", "вика": "виктория", "женя": "евгения", "саша": "александра",
    "галя": "галина", "люда": "людмила", "надя": "надежда", "вера": "вера", "марина": "марина",
    "кристина": "кристина", "ксюша": "ксения", "алёна": "алёна", "алена": "алёна", "поля": "полина",
    "лиза": "елизавета", "соня": "софья", "дима": "дмитрий", "серёжа": "сергей", "сережа": "сергей",
    "игорёк": "игорь", "миша": "михаил", "коля": "николай", "паша": "павел", "лёша": "алексей",
    "леша": "алексей", "ваня": "иван", "костя": "константин", "вова": "владимир", "андрюша": "андрей",
}  # fmt: skip


@dataclass(frozen=True)
class Busy:
    """A master's time nobody else may book: a visit (with its gap) or a hold."""

    master: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Slot:
    start: datetime  # aware
    master: str  # staff id
    duration_min: int
    ref: str | None = None  # the booking system's own handle for it
    service: str | None = None  # service id

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration_min)


@dataclass(frozen=True)
class Offer:
    day: date
    slots: list[Slot]
    on_wished_day: bool


def bookable_duration(service: Service | None) -> int | None:
    return service.duration_min if service and service.duration_min and service.duration_min > 0 else None


def can_do(member: StaffMember, service: Service) -> bool:
    """A specialist with no skills listed does anything; others only what they list."""
    if not member.active:
        return False
    wanted = {service.id, service.group} - {None}
    if member.skills:
        return bool(wanted & set(member.skills))
    return member.role == "specialist"


def masters_for(business: BusinessConfig, service: Service, branch: str | None = None) -> list[StaffMember]:
    return [m for m in business.staff if can_do(m, service) and works_in(m, branch)]


def working_intervals(
    member: StaffMember, business: BusinessConfig, day: date
) -> list[tuple[datetime, datetime]]:
    """The member's shift on ``day`` (UTC intervals) minus their breaks; none on a day off."""
    if day in member.days_off:
        return []
    calendar = shift_calendar(member, business)
    intervals = calendar.intervals(day)
    for pause in member.breaks:
        b_start = datetime.combine(day, _clock(pause.start), calendar.tz).astimezone(UTC)
        b_end = datetime.combine(day, _clock(pause.end), calendar.tz).astimezone(UTC)
        cut: list[tuple[datetime, datetime]] = []
        for start, end in intervals:
            if b_end <= start or b_start >= end:
                cut.append((start, end))
                continue
            if start < b_start:
                cut.append((start, b_start))
            if b_end < end:
                cut.append((b_end, end))
        intervals = cut
    return intervals


def _clock(value: str) -> time:
    hours, minutes = (int(p) for p in value.split(":"))
    return time(hours % 24, minutes)


def free_slots(
    business: BusinessConfig,
    service: Service,
    day: date,
    busy: Iterable[Busy],
    *,
    now: datetime,
    masters: Sequence[StaffMember] | None = None,
    branch: str | None = None,
) -> list[Slot]:
    """Every free start on ``day`` (local) for every master who can do the service, by time then master.

    A slot is free when the master is on shift for its whole length and it keeps ``gap_min`` clear
    of every other booking on both sides; starts lie on the ``step_min`` grid from local midnight."""
    duration = bookable_duration(service)
    if duration is None:
        return []
    settings = business.booking
    # Whole seconds since the epoch: the grid walk is integer arithmetic (bench/booking: 20 masters × 14 days).
    length, gap, step = duration * 60, settings.gap_min * 60, settings.step_min * 60
    earliest = int((now + timedelta(minutes=settings.lead_time_min)).timestamp())
    members = list(masters) if masters is not None else masters_for(business, service, branch)
    wanted = {m.id for m in members}
    by_master: dict[str, list[tuple[int, int]]] = {}
    for b in busy:
        if b.master not in wanted:
            continue
        # a start s clashes with a visit [b0, b1) when b0 - length - gap < s < b1 + gap
        by_master.setdefault(b.master, []).append(
            (int(b.start.timestamp()) - length - gap, int(b.end.timestamp()) + gap)
        )
    result: list[Slot] = []
    for member in members:
        taken = sorted(by_master.get(member.id, []))
        tz = shift_calendar(member, business).tz
        midnight = int(datetime.combine(day, time(0), tz).timestamp())
        for shift_start, shift_end in working_intervals(member, business, day):
            first, last = int(shift_start.timestamp()), int(shift_end.timestamp()) - length
            at = midnight + -(-(first - midnight) // step) * step  # the first grid point in the shift
            at = max(at, midnight + -(-(earliest - midnight) // step) * step)
            while at <= last:
                clash = next((hi for lo, hi in taken if lo < at < hi), None)
                if clash is not None:
                    at = midnight + -(-(clash - midnight) // step) * step  # jump past the visit
                    continue
                result.append(
                    Slot(
                        datetime.fromtimestamp(at, UTC).astimezone(tz),
                        member.id,
                        duration,
                        service=service.id,
                    )
                )
                at += step
    result.sort(key=lambda s: (s.start, s.master))
    return result


def _window_bounds(window: str | None) -> tuple[time | None, time | None]:
    """[from, until) of the start time a window allows."""
    if not window:
        return None, None
    if window == "morning":
        return None, time(12)
    if window == "afternoon":
        return time(12), time(17)
    if window == "evening":
        return time(17), None
    bound, _, at = window.partition(" ")
    hours, minutes = (int(p) for p in at.split(":"))
    return (time(hours, minutes), None) if bound == "after" else (None, time(hours, minutes))


def _fits_window(slot: Slot, window: str | None) -> bool:
    low, high = _window_bounds(window)
    local = slot.start.timetz().replace(tzinfo=None)
    return (low is None or local >= low) and (high is None or local < high)


def nearest(
    slots: Sequence[Slot],
    wish_time: str | None,
    window: str | None,
    count: int,
    master: str | None = None,
) -> list[Slot]:
    """Up to ``count`` slots at different times, nearest to the wished time (or the window's start),
    in time order; within the window when it has any; a named master's slots when they have any."""
    if master and any(s.master == master for s in slots):
        slots = [s for s in slots if s.master == master]
    inside = [s for s in slots if _fits_window(s, window)]
    pool = inside or list(slots)
    if not pool:
        return []
    target = _target_minutes(wish_time, window)

    def minutes(slot: Slot) -> int:
        return slot.start.hour * 60 + slot.start.minute

    distinct: dict[int, Slot] = {}
    for slot in pool:
        distinct.setdefault(minutes(slot), slot)  # one master per time: the first in a stable order
    chosen = sorted(distinct.values(), key=lambda s: (abs(minutes(s) - target), minutes(s)))[:count]
    return sorted(chosen, key=lambda s: s.start)


def _target_minutes(wish_time: str | None, window: str | None) -> int:
    if wish_time:
        hours, minutes = (int(p) for p in wish_time.split(":"))
        return hours * 60 + minutes
    low, high = _window_bounds(window)
    if low is not None:
        return low.hour * 60 + low.minute
    if high is not None:
        return 9 * 60  # «до 12»: the morning from its start
    return 0  # no time: the earliest


def find_offer(
    business: BusinessConfig,
    service: Service,
    wished_day: date,
    today: date,
    slots_on: Callable[[date], Sequence[Slot]],
    *,
    wish_time: str | None = None,
    window: str | None = None,
    master: str | None = None,
) -> Offer | None:
    """The slots to offer: near the wish on the wished day, else on the nearest day after it that
    has any (``booking.search_days`` ahead); None when nothing is free in that time.
    ``slots_on(day)``: every free slot of the service that day (the booking system's answer)."""
    if bookable_duration(service) is None:
        return None
    settings = business.booking
    first = max(wished_day, today)
    for offset in range(settings.search_days + 1):
        day = first + timedelta(days=offset)
        chosen = nearest(slots_on(day), wish_time, window, settings.offer_count, master)
        if chosen:
            return Offer(day, chosen, on_wished_day=day == wished_day)
    return None


# --------------------------------------------------------------------------- the client's pick

ORDINALS = [
    (re.compile(r"\b(перв\w*|1-?(е|й|ое|ый))\b|\bfirst\b", re.I), 0),
    (re.compile(r"\b(втор\w*|2-?(е|й|ое|ой))\b|\bsecond\b", re.I), 1),
    (re.compile(r"\b(трет\w*|3-?(е|й|ье|ий))\b|\bthird\b", re.I), 2),
    (re.compile(r"\b(последн\w*)\b|\blast\b", re.I), -1),
]
PHONE = re.compile(r"\+?\d[\d\s\-()]{7,}\d")
CLOCK = re.compile(r"(?<![\d.:])(\d{1,2})(?:[:.](\d{2}))?(?![\d.:]|\s*(?:числ|декабр|январ|₽|руб))")


def picked_slot(text: str, offered: Sequence[Slot]) -> Slot | None:
    """The offered slot the answer names: «давайте в 14:30», «в 13», «второе», «последнее»;
    None when it names none of them (a new wish, a question)."""
    if not offered:
        return None
    text = PHONE.sub(" ", text)  # «мой номер +7 913 840-27-65» names no time
    for match in CLOCK.finditer(text):
        hours, minutes = int(match.group(1)), match.group(2)
        for candidate_hour in (hours, hours + 12) if hours < 12 else (hours,):
            found = [
                s
                for s in offered
                if s.start.hour == candidate_hour and (minutes is None or s.start.minute == int(minutes))
            ]
            if found:
                return found[0]
    for pattern, index in ORDINALS:
        if pattern.search(text) and (index == -1 or index < len(offered)):
            return offered[index]
    if len(offered) == 1 and re.match(r"^\s*(да|давайте|ок|хорошо|подходит|удобно|yes|ok)\b", text, re.I):
        return offered[0]
    return None


# --------------------------------------------------------------------------- a master the client names


def named_master(text: str, business: BusinessConfig) -> str | None:
    """«к Оле», «можно к Ольге», «к мастеру Анне»: the staff id of a master the client named."""
    if not text or not business.staff:
        return None
    known: dict[str, str] = {}
    for member in business.staff:
        if not member.active:
            continue
        for name in (member.name, *member.aliases):
            known.setdefault(name.split()[0].lower().replace("ё", "е"), member.id)
    for match in NAMED.finditer(text):
        word = match.group(1)
        for form in _nominatives(word.lower()):
            form = form.replace("ё", "е")
            full = SHORT_NAMES.get(form, form).replace("ё", "е")
            for candidate in (form, full):
                if candidate in known:
                    return known[candidate]
    return None


# «к Оле», «ко Льву», «у Ольги», «к мастеру Анне», «мастер Катя»: not the client's own name («я Анна»)
NAMED = re.compile(
    r"(?:\b(?:к|ко|у)\s+(?:мастеру\s+|мастера\s+|мастер\s+)?|\bмастер\w*\s+)([А-ЯЁа-яё]{2,})", re.I
)


def _nominatives(word: str) -> list[str]:
    forms = [word]
    for parse in morph().parse(word):
        if "Name" in parse.tag or "NOUN" in parse.tag:
            forms.append(parse.normal_form)
            inflected = parse.inflect({"nomn", "sing"})
            if inflected:
                forms.append(inflected.word)
    return list(dict.fromkeys(forms))


def local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()
