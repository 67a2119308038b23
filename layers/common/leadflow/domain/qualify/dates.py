"""The date a client wants: today/tomorrow, weekdays, «следующей неделе», numeric and month-name dates,
relative spans («через неделю», «через 2 дня»), and their English forms («tomorrow», «next Friday», «in 2 days»)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from leadflow.domain.qualify import lexicon
from leadflow.domain.qualify.text import Message, clause_at, correction_at, lazy_re


@dataclass(slots=True)
class _Candidate:
    position: int
    value: Any


NEXT_WEEK_RE = lazy_re(
    r"(?:следующ\w*|след\.?)(?:\s+недел\w*)?(?:\s+(?:в|во|на))?\s*$|\bnext(?:\s+week)?(?:\s+on)?\s*$"
)


NEXT_WEEK_AFTER_RE = lazy_re(r"\s*(?:(?:на|в)\s+)?следующ\w*\s+недел|\s*(?:of\s+)?next\s+week")


# «через неделю» = +7, «через 2 дня» = +2, «через день» = +2, «через 3 недели» = +21; «через месяц» stays vague
_SPAN_WORDS = "|".join(lexicon.SPAN_NUMBERS)


# «через неделю» = +7, «через 2 дня» = +2, «через день» = +2, «через 3 недели» = +21, «дня через три»,
# «через 2-3 дня» (the first); «через месяц» and «через несколько дней» stay vague
SPAN_RE = lazy_re(
    r"\bчерез\s+(?:(?P<num>\d{1,2})(?:\s*-\s*\d{1,2})?\s*|(?P<word>" + _SPAN_WORDS + r")\s+)?"
    r"(?P<unit>день|дня|дней|денек|денька|недел\w*)\b"
    r"|\b(?P<unit_first>дня|дней|недел[иь]|неделек)\s+через\s+(?:(?P<num_after>\d{1,2})|(?P<word_after>"
    + _SPAN_WORDS + r"))\b"
    r"|\bin\s+(?:(?P<en_num>\d{1,2})|(?P<en_word>"
    + "|".join(sorted(lexicon.ENGLISH_NUMBERS, key=len, reverse=True))
    + r"))\s+(?P<en_unit>days?|weeks?)\b"
)  # fmt: skip


DAY_AFTER_TOMORROW_RE = lazy_re(r"(?:the\s+)?day\s+after\s+$")


def _span_days(match: re.Match[str]) -> int | None:
    if match.group("unit"):
        unit = match.group("unit")
        if match.group("num"):
            count = int(match.group("num"))
        elif match.group("word"):
            count = lexicon.SPAN_NUMBERS[match.group("word")]
        else:
            return 7 if unit.startswith("недел") else 2  # «через день» is the day after tomorrow
        return count * 7 if unit.startswith("недел") else count
    if match.group("unit_first"):
        after = match.group("num_after")
        count = int(after) if after else lexicon.SPAN_NUMBERS[match.group("word_after")]
        return count * 7 if match.group("unit_first").startswith("недел") else count
    count = (
        int(match.group("en_num"))
        if match.group("en_num")
        else lexicon.ENGLISH_NUMBERS[match.group("en_word")]
    )
    return count * 7 if match.group("en_unit").startswith("week") else count


def _next_weekday(today: date, weekday: int) -> date:
    return today + timedelta(days=(weekday - today.weekday()) % 7)


def _next_day_of_month(today: date, day: int) -> date | None:
    year, month = today.year, today.month
    for _ in range(13):
        try:
            candidate = date(year, month, day)
        except ValueError:
            candidate = None
        if candidate and candidate >= today:
            return candidate
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return None


def _next_date(today: date, day: int, month: int, year: int | None = None) -> date | None:
    try:
        if year:
            return date(year if year > 100 else 2000 + year, month, day)
        candidate = date(today.year, month, day)
        return candidate if candidate >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


def _negated_or_foreign(norm: str, start: int) -> bool:
    before = norm[max(0, start - 30) : start]
    if re.search(r"(?:^|\s)не\s+(?:на\s+|в\s+|во\s+|к\s+)?$", before):
        return True
    if re.search(r"(?:^|\s)(?:до|till|until|by)\s+$", before):
        return True
    events = (
        r"(?:свадьб\w*|день рождени\w*|др|праздник\w*|выпускн\w*|корпоратив\w*|"
        r"мероприяти\w*|отъезд\w*|уезжаю)"
    )
    return bool(re.search(events + r"\s+(?:у\s+\w+\s+)?(?:в|во|на)?\s*$", before))


_EN_MONTHS = "|".join(sorted(lexicon.ENGLISH_MONTHS, key=len, reverse=True))


# «on the 20th», «March 21», «21st of March»
ENGLISH_DATE_RE = lazy_re(
    r"\b(?:(?P<month_first>" + _EN_MONTHS + r")\.?\s+(?P<day_after>\d{1,2})(?:st|nd|rd|th)?"
    r"|(?P<day_first>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<month_after>" + _EN_MONTHS + r")"
    r"|the\s+(?P<day_alone>\d{1,2})(?:st|nd|rd|th))\b"
)


DATE_NUMERIC_RE = lazy_re(r"(?<![\d:.])(\d{1,2})[./](\d{1,2})(?:[./](\d{2,4}))?(?![\d:])")


DAY_OF_MONTH_RE = lazy_re(
    r"(?<![\d.:])(\d{1,2})\s*(?:-?го|-?е)?\s*(?:числа|число)\b|(?<![\d.:])(\d{1,2})\s*-?го\b"
)


DAY_MONTH_RE = lazy_re(r"(?<![\d.:])(\d{1,2})\s*(?:-?го\s+)?(" + "|".join(lexicon.MONTHS) + r")\b")


def extract_date(message: Message, today: date) -> date | None:
    found = find_date(message, today)
    return found[0] if found else None


def find_date(message: Message, today: date) -> tuple[date, int] | None:
    """The preferred date and where in the text it is said."""
    norm = message.norm
    candidates: list[_Candidate] = []
    for match in DATE_NUMERIC_RE.finditer(norm):
        day, month = int(match.group(1)), int(match.group(2))
        year = int(match.group(3)) if match.group(3) else None
        if 1 <= month <= 12:
            value = _next_date(today, day, month, year)
            if value:
                candidates.append(_Candidate(match.start(), value))
    for match in DAY_MONTH_RE.finditer(norm):
        value = _next_date(today, int(match.group(1)), lexicon.MONTHS[match.group(2)])
        if value:
            candidates.append(_Candidate(match.start(), value))
    for match in DAY_OF_MONTH_RE.finditer(norm):
        day = int(match.group(1) or match.group(2))
        if not DAY_MONTH_RE.match(norm, match.start()):
            value = _next_day_of_month(today, day) if 1 <= day <= 31 else None
            if value:
                candidates.append(_Candidate(match.start(), value))
    if message.english:
        for match in ENGLISH_DATE_RE.finditer(norm):
            if match.group("day_alone"):
                value = _next_day_of_month(today, int(match.group("day_alone")))
            else:
                day = int(match.group("day_after") or match.group("day_first"))
                month = lexicon.ENGLISH_MONTHS[match.group("month_first") or match.group("month_after")]
                value = _next_date(today, day, month)
            if value:
                candidates.append(_Candidate(match.start(), value))
    for match in SPAN_RE.finditer(norm):
        days = _span_days(match)
        if days is not None:
            candidates.append(_Candidate(match.start(), today + timedelta(days=days)))
    weekdays = lexicon.ENGLISH_WEEKDAYS if message.english else lexicon.WEEKDAY_WORDS
    tokens = message.tokens
    for index, token in enumerate(tokens):
        word = token.text
        if word in lexicon.RELATIVE_DAY_WORDS:
            if word == "tomorrow" and DAY_AFTER_TOMORROW_RE.search(
                norm, max(0, token.start - 20), token.start
            ):
                candidates.append(_Candidate(token.start, today + timedelta(days=2)))
                continue
            if (
                word == "зав"
                and index + 1 < len(tokens)
                and tokens[index + 1].text in {"отделением", "кафедрой"}
            ):
                continue
            candidates.append(
                _Candidate(token.start, today + timedelta(days=lexicon.RELATIVE_DAY_WORDS[word]))
            )
        elif word in weekdays:
            weekday = weekdays[word]
            context = norm[max(0, token.start - 40) : token.start]
            if NEXT_WEEK_RE.search(context) or NEXT_WEEK_AFTER_RE.match(norm, token.start + len(word)):
                next_monday = today + timedelta(days=7 - today.weekday())
                candidates.append(_Candidate(token.start, next_monday + timedelta(days=weekday)))
            else:
                candidates.append(_Candidate(token.start, _next_weekday(today, weekday)))
    clause_of = {t.start: t.clause for t in tokens}
    kept = []
    corrected = correction_at(norm)
    if corrected is not None and any(c.position > corrected for c in candidates):
        candidates = [c for c in candidates if c.position > corrected]  # «через день… хотя нет, завтра»
    for candidate in sorted(candidates, key=lambda c: c.position):
        clause = clause_of.get(candidate.position, clause_at(tokens, candidate.position))
        if clause in message.past_clauses or _negated_or_foreign(norm, candidate.position):
            continue
        if candidate.value < today:
            continue
        kept.append(candidate)
    return (kept[0].value, kept[0].position) if kept else None
