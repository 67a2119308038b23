"""The date a client wants: today/tomorrow, weekdays, «следующей неделе», numeric and month-name dates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from leadflow.domain.qualify import lexicon

if TYPE_CHECKING:
    pass
from leadflow.domain.qualify.text import Message, clause_at, lazy_re


@dataclass(slots=True)
class _Candidate:
    position: int
    value: Any


NEXT_WEEK_RE = lazy_re(r"(?:следующ\w*|след\.?)(?:\s+недел\w*)?(?:\s+(?:в|во|на))?\s*$")


NEXT_WEEK_AFTER_RE = lazy_re(r"\s*(?:на|в)\s+следующ\w*\s+недел")


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
    if re.search(r"(?:^|\s)до\s+$", before):
        return True
    events = (
        r"(?:свадьб\w*|день рождени\w*|др|праздник\w*|выпускн\w*|корпоратив\w*|"
        r"мероприяти\w*|отъезд\w*|уезжаю)"
    )
    return bool(re.search(events + r"\s+(?:у\s+\w+\s+)?(?:в|во|на)?\s*$", before))


DATE_NUMERIC_RE = lazy_re(r"(?<![\d:.])(\d{1,2})[./](\d{1,2})(?:[./](\d{2,4}))?(?![\d:])")


DAY_OF_MONTH_RE = lazy_re(
    r"(?<![\d.:])(\d{1,2})\s*(?:-?го|-?е)?\s*(?:числа|число)\b|(?<![\d.:])(\d{1,2})\s*-?го\b"
)


DAY_MONTH_RE = lazy_re(r"(?<![\d.:])(\d{1,2})\s*(?:-?го\s+)?(" + "|".join(lexicon.MONTHS) + r")\b")


def extract_date(message: Message, today: date) -> date | None:
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
    tokens = message.tokens
    for index, token in enumerate(tokens):
        word = token.text
        if word in lexicon.RELATIVE_DAY_WORDS:
            if (
                word == "зав"
                and index + 1 < len(tokens)
                and tokens[index + 1].text in {"отделением", "кафедрой"}
            ):
                continue
            candidates.append(
                _Candidate(token.start, today + timedelta(days=lexicon.RELATIVE_DAY_WORDS[word]))
            )
        elif word in lexicon.WEEKDAY_WORDS:
            weekday = lexicon.WEEKDAY_WORDS[word]
            context = norm[max(0, token.start - 40) : token.start]
            if NEXT_WEEK_RE.search(context) or NEXT_WEEK_AFTER_RE.match(norm, token.start + len(word)):
                next_monday = today + timedelta(days=7 - today.weekday())
                candidates.append(_Candidate(token.start, next_monday + timedelta(days=weekday)))
            else:
                candidates.append(_Candidate(token.start, _next_weekday(today, weekday)))
    clause_of = {t.start: t.clause for t in tokens}
    kept = []
    for candidate in sorted(candidates, key=lambda c: c.position):
        clause = clause_of.get(candidate.position, clause_at(tokens, candidate.position))
        if clause in message.past_clauses or _negated_or_foreign(norm, candidate.position):
            continue
        if candidate.value < today:
            continue
        kept.append(candidate)
    return kept[0].value if kept else None
