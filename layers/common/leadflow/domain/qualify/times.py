"""The clock time a client wants: «в 15:30», «к трём», «полшестого», «в пол 10», «в 6 вечера», «at 11am».

A lower bound is a time too («после 18», «не раньше 16», «с 16» = that hour); an upper bound («до 12»,
«не позже 15») is not (it is only a window, see windows.py)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from leadflow.domain.qualify import lexicon

if TYPE_CHECKING:
    pass
from leadflow.domain.qualify.dates import DATE_NUMERIC_RE, DAY_MONTH_RE
from leadflow.domain.qualify.text import Message, lazy_re

NOT_HOUR_AFTER = lazy_re(
    r"\s*(?:[./]\d|-?го\b|-?е\b|числ|лет|год|лит|%|₽|р\b|р\.|руб|тыс|к\b|000|колес|шт|мм|см|кг|d\b|д\b|минут|мин\b|"
    r"раз\b|раза\b|дн|недел|месяц|сеанс|процедур|человек|чел\b|зуб|ресниц|прядей|мест|года|дет|реб|по\s|"
    r"days?\b|weeks?\b|months?\b|hours?\b|min|years?\b|people|persons?\b|" + "|".join(lexicon.MONTHS) + r")"
)


# «15:30», «15.30», and «15-30» with round minutes («10-12» is a range, not 10:12)
CLOCK_RE = lazy_re(
    r"(?<![\d:/])(?<!\d\.)(?<!\d-)([01]?\d|2[0-3])(?:[:.]|-(?=[0-5][05](?!\d)))([0-5]\d)(?![\d:/]|\.\d|-\d)"
)


PREP = (
    r"(?:^|(?<=[\s,(]))(?P<prep>в|во|к|ко|на|после|около|с|со|часов в|часа в|не\s+раньше|не\s+ранее|начиная\s+с|в\s+районе|"
    r"posle|v|k|na|at|around|about|after|by|from|not\s+earlier\s+than|no\s+earlier\s+than|not\s+before|between)\s+"
)


BARE_HOUR_RE = lazy_re(PREP + r"(?P<hour>\d{1,2})(?!\d|[:.]\d|-[0-5][05](?!\d))")


WORD_HOUR_RE = lazy_re(
    PREP + r"(?P<word>" + "|".join(sorted(lexicon.HOUR_WORDS, key=len, reverse=True)) + r")\b"
)


HALF_RE = lazy_re(
    r"\b(?:пол|пол-|половин[еау]\s+)\s*(?P<ordinal>" + "|".join(lexicon.HALF_HOUR_ORDINALS) + r")\b"
)


HALF_NUMBER_RE = lazy_re(r"(?:^|(?<=[\s,(]))(?:в\s+)?пол-?\s*(?P<hour>\d{1,2})(?!\d|[:.]\d)")


AM_PM_RE = lazy_re(r"(?<![\d:.])(?P<hour>1[0-2]|0?[1-9])\s*(?P<part>am|pm|a\.m\.|p\.m\.)(?!\w)")


DAYPART_RE = lazy_re(r"\s*(?:час\w*\s*)?(?P<part>утра|дня|вечера|ночи|pm|am|p\.m\.|a\.m\.)(?!\w)")


UPPER_BOUND_BEFORE_RE = lazy_re(r"(?:^|\s)(?:до|не\s+позже|не\s+позднее|before|until|till|later\s+than)\s*$")


# «вечером в 8» = 20:00, «утром часов в 7» = 07:00: a part of the day just before the hour reads as its
# «вечера» / «утра»; «днём» changes nothing the bare-hour rule does not
PART_BEFORE_RE = lazy_re(
    r"(?P<part>утром|утречком|с утра|вечером|вечерком|morning|evening|tonight)\s+"
    r"(?:(?:часов|часиков|часа)\s+)?(?:в\s+|к\s+|на\s+|at\s+|around\s+)?$"
)
_PART_BEFORE = {"утром": "утра", "утречком": "утра", "с утра": "утра", "morning": "am"}


def apply_daypart(hour: int, part: str | None) -> int:
    if part in ("дня", "вечера", "pm", "p.m."):
        return hour + 12 if hour < 12 else hour
    if part in ("утра", "ночи", "am", "a.m."):
        return 0 if hour == 12 and part != "утра" else hour
    return hour + 12 if 1 <= hour <= 7 else hour


def is_date_like(clock: str) -> bool:
    """«20.03» written where a clock time could stand is a date."""
    return bool(DATE_NUMERIC_RE.fullmatch(clock)) and "." in clock and 1 <= int(clock[-2:]) <= 12


def extract_time(message: Message) -> str | None:
    found = find_time(message)
    return found[0] if found else None


def find_time(message: Message) -> tuple[str, int] | None:
    """The preferred clock time and where in the text it is said."""
    norm = message.norm
    candidates: list[tuple[int, int, str, str | None]] = []  # position, end, HH:MM, preposition

    def daypart_after(end: int, start: int | None = None) -> str | None:
        match = DAYPART_RE.match(norm, end)
        if match:
            return match.group("part")
        before = PART_BEFORE_RE.search(norm, max(0, start - 30), start) if start is not None else None
        return _PART_BEFORE.get(before.group("part"), "вечера") if before else None

    for match in CLOCK_RE.finditer(norm):
        hour, minute = int(match.group(1)), int(match.group(2))
        is_dotted = match.group(0)[len(match.group(1))] == "."
        if is_dotted and DATE_NUMERIC_RE.fullmatch(match.group(0)) and 1 <= minute <= 12 and 1 <= hour <= 31:
            continue  # 20.03 is a date
        hour = apply_daypart(hour, daypart_after(match.end(), match.start())) if hour < 13 else hour
        prep_match = re.search(r"(\S+)\s*$", norm[: match.start()])
        candidates.append(
            (
                match.start(),
                match.end(),
                f"{hour:02d}:{minute:02d}",
                prep_match.group(1) if prep_match else None,
            )
        )
    for match in BARE_HOUR_RE.finditer(norm):
        hour = int(match.group("hour"))
        if (
            hour > 23
            or NOT_HOUR_AFTER.match(norm, match.end())
            or DAY_MONTH_RE.match(norm, match.start("hour"))
        ):
            continue
        hour = apply_daypart(hour, daypart_after(match.end(), match.start()))
        candidates.append((match.start("hour"), match.end(), f"{hour % 24:02d}:00", match.group("prep")))
    for match in WORD_HOUR_RE.finditer(norm):
        word = match.group("word")
        if NOT_HOUR_AFTER.match(norm, match.end()) or (
            word in {"час", "часу"} and match.group("prep") == "через"
        ):
            continue
        rest = norm[match.end() :]
        if (
            word in {"два", "три", "четыре"}
            and re.match(r"\s+(?:дня|часа)\b", rest)
            and not re.match(r"\s+часа\s+дня", rest)
        ):
            continue  # «на два дня», «на три часа» are durations
        hour = apply_daypart(lexicon.HOUR_WORDS[word], daypart_after(match.end(), match.start()))
        candidates.append((match.start("word"), match.end(), f"{hour:02d}:00", match.group("prep")))
    for match in HALF_RE.finditer(norm):
        hour = lexicon.HALF_HOUR_ORDINALS[match.group("ordinal")]
        part = daypart_after(match.end(), match.start())
        hour = 12 if hour == 0 and part is None else apply_daypart(hour, part) if hour else hour
        candidates.append((match.start(), match.end(), f"{hour:02d}:30", None))
    for match in HALF_NUMBER_RE.finditer(norm):
        # «в пол 10» = 09:30: the bare-hour rule first («в пол 5» = 16:30), then half an hour back
        hour = int(match.group("hour"))
        if not 1 <= hour <= 24 or NOT_HOUR_AFTER.match(norm, match.end()):
            continue
        hour = apply_daypart(hour, daypart_after(match.end(), match.start())) if hour < 13 else hour
        candidates.append((match.start(), match.end(), f"{(hour - 1) % 24:02d}:30", None))
    if message.english:
        for match in AM_PM_RE.finditer(norm):
            hour = apply_daypart(int(match.group("hour")), match.group("part"))
            candidates.append((match.start(), match.end(), f"{hour:02d}:00", None))
    candidates.sort()
    kept = []
    for index, (start, end, value, prep) in enumerate(candidates):
        if _negated_or_time_foreign(norm, start):
            continue
        if UPPER_BOUND_BEFORE_RE.search(norm, max(0, start - 20), start):
            continue  # «не позже 15:00», «до пол 11» are bounds, not times
        # a move «с 12 на 15:00» keeps the new time
        if (
            prep == "с"
            and index + 1 < len(candidates)
            and re.match(r"\s*на\s", norm[end : candidates[index + 1][0]])
        ):
            continue
        kept.append((value, start))
    return kept[0] if kept else None


def _negated_or_time_foreign(norm: str, start: int) -> bool:
    before = norm[max(0, start - 12) : start]
    return bool(
        re.search(r"(?:^|\s)не\s+(?:в|во|к|на|после)?\s*$", before) or re.search(r"через\s+$", before)
    )
