"""The clock time a client wants: «в 15:30», «к трём», «полшестого», «в 6 вечера»."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from leadflow.domain.qualify import lexicon

if TYPE_CHECKING:
    pass
from leadflow.domain.qualify.dates import DATE_NUMERIC_RE, DAY_MONTH_RE
from leadflow.domain.qualify.text import Message, lazy_re

_NOT_HOUR_AFTER = lazy_re(
    r"\s*(?:[./]\d|-?го\b|-?е\b|числ|лет|год|лит|%|₽|р\b|р\.|руб|тыс|к\b|000|колес|шт|мм|см|кг|d\b|д\b|минут|мин\b|"
    r"раз\b|раза\b|дн|недел|месяц|сеанс|процедур|человек|чел\b|зуб|ресниц|прядей|мест|года|"
    + "|".join(lexicon.MONTHS)
    + r")"
)


CLOCK_RE = lazy_re(r"(?<![\d:/])(?<!\d\.)([01]?\d|2[0-3])[:.]([0-5]\d)(?![\d:/]|\.\d)")


PREP = r"(?:^|(?<=[\s,(]))(?P<prep>в|во|к|ко|на|после|около|с|часов в|часа в|posle|v|k|na)\s+"


BARE_HOUR_RE = lazy_re(PREP + r"(?P<hour>\d{1,2})(?!\d|[:.]\d)")


WORD_HOUR_RE = lazy_re(
    PREP + r"(?P<word>" + "|".join(sorted(lexicon.HOUR_WORDS, key=len, reverse=True)) + r")\b"
)


HALF_RE = lazy_re(
    r"\b(?:пол|пол-|половин[еау]\s+)\s*(?P<ordinal>" + "|".join(lexicon.HALF_HOUR_ORDINALS) + r")\b"
)


DAYPART_RE = lazy_re(r"\s*(?:час\w*\s*)?(?P<part>утра|дня|вечера|ночи|pm|am)\b")


def _apply_daypart(hour: int, part: str | None) -> int:
    if part in ("дня", "вечера", "pm"):
        return hour + 12 if hour < 12 else hour
    if part in ("утра", "ночи", "am"):
        return 0 if part == "ночи" and hour == 12 else hour
    return hour + 12 if 1 <= hour <= 7 else hour


def extract_time(message: Message) -> str | None:
    norm = message.norm
    candidates: list[tuple[int, int, str, str | None]] = []  # position, end, HH:MM, preposition

    def daypart_after(end: int) -> str | None:
        match = DAYPART_RE.match(norm, end)
        return match.group("part") if match else None

    for match in CLOCK_RE.finditer(norm):
        hour, minute = int(match.group(1)), int(match.group(2))
        is_dotted = match.group(0)[len(match.group(1))] == "."
        if is_dotted and DATE_NUMERIC_RE.fullmatch(match.group(0)) and 1 <= minute <= 12 and 1 <= hour <= 31:
            continue  # 20.03 is a date
        hour = _apply_daypart(hour, daypart_after(match.end())) if hour < 13 else hour
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
            or _NOT_HOUR_AFTER.match(norm, match.end())
            or DAY_MONTH_RE.match(norm, match.start("hour"))
        ):
            continue
        if match.group("prep") == "с" and not re.match(r"\s+(?:до|на)\s", norm[match.end() :]):
            continue
        hour = _apply_daypart(hour, daypart_after(match.end()))
        candidates.append((match.start("hour"), match.end(), f"{hour % 24:02d}:00", match.group("prep")))
    for match in WORD_HOUR_RE.finditer(norm):
        word = match.group("word")
        if _NOT_HOUR_AFTER.match(norm, match.end()) or (
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
        if match.group("prep") == "с":
            continue
        hour = _apply_daypart(lexicon.HOUR_WORDS[word], daypart_after(match.end()))
        candidates.append((match.start("word"), match.end(), f"{hour:02d}:00", match.group("prep")))
    for match in HALF_RE.finditer(norm):
        hour = lexicon.HALF_HOUR_ORDINALS[match.group("ordinal")]
        part = daypart_after(match.end())
        hour = 12 if hour == 0 and part is None else _apply_daypart(hour, part) if hour else hour
        candidates.append((match.start(), match.end(), f"{hour:02d}:30", None))
    candidates.sort()
    kept = []
    for index, (start, end, value, prep) in enumerate(candidates):
        if _negated_or_time_foreign(norm, start):
            continue
        # a move «с 12 на 15:00» keeps the new time
        if (
            prep == "с"
            and index + 1 < len(candidates)
            and re.match(r"\s*на\s", norm[end : candidates[index + 1][0]])
        ):
            continue
        kept.append(value)
    return kept[0] if kept else None


def _negated_or_time_foreign(norm: str, start: int) -> bool:
    before = norm[max(0, start - 12) : start]
    return bool(
        re.search(r"(?:^|\s)не\s+(?:в|во|к|на|после)?\s*$", before) or re.search(r"через\s+$", before)
    )
