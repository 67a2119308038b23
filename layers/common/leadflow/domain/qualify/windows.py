"""The part of the day or the bound a client gives: «с утра», «после обеда», «после 18», «до 12»."""

from __future__ import annotations

import re

from leadflow.domain.qualify import lexicon
from leadflow.domain.qualify.text import Message, clause_at, lazy_re
from leadflow.domain.qualify.times import DAYPART_RE, NOT_HOUR_AFTER, apply_daypart, is_date_like

# one \b in front of all the alternatives keeps the search fast (see text.compiled)
WINDOW_RE = lazy_re(
    r"\b(?:"
    + "|".join(f"(?P<{name}>(?:{'|'.join(alts)})\\b)" for name, alts in lexicon.WINDOW_PATTERNS.items())
    + ")"
)


GREETING_BEFORE_RE = lazy_re(r"good\s+$")


def _words(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))


HOUR_WORDS = "|".join(sorted(lexicon.HOUR_WORDS, key=len, reverse=True))


BOUND_RE = lazy_re(
    r"(?:^|(?<=[\s,(]))(?:(?P<lower>" + _words(lexicon.LOWER_BOUND_WORDS) + r")|(?P<upper>"
    + _words(lexicon.UPPER_BOUND_WORDS) + r"))\s+(?:(?P<hour>[01]?\d|2[0-3])(?:[:.](?P<minute>[0-5]\d))?"
    r"(?![\d:])|(?P<word>" + HOUR_WORDS + r")\b|пол-?\s*(?:(?P<half>\d{1,2})(?!\d)|(?P<ordinal>"
    + "|".join(lexicon.HALF_HOUR_ORDINALS) + r")\b))"
)  # fmt: skip


NEGATED_RE = lazy_re(r"(?:^|\s)не\s+$")


MOVE_AFTER_RE = lazy_re(r"\s+на\s+\d")


def extract_window(message: Message) -> str | None:
    """`morning`, `afternoon`, `evening`, `after HH:MM`, `before HH:MM` or None; the first one mentioned."""
    found = find_window(message)
    return found[0] if found else None


def find_window(message: Message) -> tuple[str, int] | None:
    norm = message.norm
    candidates: list[tuple[int, str]] = []
    for match in WINDOW_RE.finditer(norm):
        before = max(0, match.start() - 5)
        if not NEGATED_RE.search(norm, before, match.start()) and not GREETING_BEFORE_RE.search(
            norm, before, match.start()
        ):
            candidates.append((match.start(), match.lastgroup or ""))
    for match in BOUND_RE.finditer(norm):
        value = _bound(norm, match)
        if value:
            candidates.append((match.start(), value))
    if not candidates:
        return None
    candidates.sort()
    for position, value in candidates:
        if clause_at(message.tokens, position) not in message.past_clauses:
            return value, position
    return None


def _bound(norm: str, match: re.Match[str]) -> str | None:
    end = match.end()
    if NOT_HOUR_AFTER.match(norm, end):
        return None
    minute = 0
    part = DAYPART_RE.match(norm, end)
    daypart = part.group("part") if part else None
    if match.group("half") or match.group("ordinal"):
        # «до пол 7», «до полседьмого» = before 18:30
        if match.group("ordinal"):
            begun = lexicon.HALF_HOUR_ORDINALS[match.group("ordinal")]
            hour = apply_daypart(begun, daypart) if begun else 12
        else:
            hour = apply_daypart(int(match.group("half")), daypart) - 1
        return f"{'after' if match.group('lower') else 'before'} {hour % 24:02d}:30"
    if match.group("word"):
        hour = lexicon.HOUR_WORDS[match.group("word")]
    else:
        hour = int(match.group("hour"))
        if match.group("minute"):
            if is_date_like(match.group(0)[len(match.group(1) or match.group(2)) :].strip()):
                return None
            minute = int(match.group("minute"))
    word = " ".join((match.group("lower") or match.group("upper")).split())
    if word in ("с", "со") and MOVE_AFTER_RE.match(norm, end):
        return None  # «с 12 на 15:00» moves a visit, it is no bound
    hour = apply_daypart(hour, daypart) if hour < 13 else hour
    kind = "after" if match.group("lower") else "before"
    return f"{kind} {hour % 24:02d}:{minute:02d}"
