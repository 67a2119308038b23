"""Phone numbers in free text: digits in any layout, or dictated in words."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from leadflow.domain.phones import russian_client_number
from leadflow.domain.qualify import lexicon

if TYPE_CHECKING:
    pass
from leadflow.domain.qualify.text import lazy_re, split_transcript


def _words_to_digits(text: str) -> list[str]:
    """Runs of digits dictated in words («восемь девятьсот тринадцать …») as digit strings."""
    words = re.findall(r"[а-яё+]+|\d+", text.lower().replace("ё", "е"))
    runs: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("плюс", "+"):
            if current:
                runs.append("".join(current))
            current = ["+"]
            i += 1
            continue
        value, used = _number_group(words, i)
        if used:
            current.append(value)
            i += used
            continue
        if word.isdigit() and current:
            current.append(word)
            i += 1
            continue
        if current:
            runs.append("".join(current))
            current = []
        i += 1
    if current:
        runs.append("".join(current))
    return [r for r in runs if sum(c.isdigit() for c in r) >= 10]


def _number_group(words: list[str], i: int) -> tuple[str, int]:
    word = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else ""
    after = words[i + 2] if i + 2 < len(words) else ""
    if word in lexicon.HUNDREDS_WORDS:
        value = lexicon.HUNDREDS_WORDS[word]
        if nxt in lexicon.TENS_WORDS:
            value += lexicon.TENS_WORDS[nxt]
            if lexicon.DIGIT_WORDS.get(after):
                return str(value + lexicon.DIGIT_WORDS[after]), 3
            return str(value), 2
        if nxt in lexicon.TEEN_WORDS:
            return str(value + lexicon.TEEN_WORDS[nxt]), 2
        if lexicon.DIGIT_WORDS.get(nxt):
            return str(value + lexicon.DIGIT_WORDS[nxt]), 2
        return str(value), 1
    if word in lexicon.TENS_WORDS:
        value = lexicon.TENS_WORDS[word]
        if lexicon.DIGIT_WORDS.get(nxt):
            return str(value + lexicon.DIGIT_WORDS[nxt]), 2
        return str(value), 1
    if word in lexicon.TEEN_WORDS:
        return str(lexicon.TEEN_WORDS[word]), 1
    if word in lexicon.DIGIT_WORDS:
        return str(lexicon.DIGIT_WORDS[word]), 1
    return "", 0


PHONE_FALLBACK_RE = lazy_re(
    r"(?<![\d№])(?:\+7|8|7)?[\s\-()]*\d{3}[\s\-()]*\d{3}[\s\-]*\d{2}[\s\-]*\d{2}(?!\d)"
)


def _valid_russian(number: Any) -> str | None:
    return russian_client_number(f"+{number.country_code}{number.national_number}")


def extract_phone(text: str, channel: str = "") -> str | None:
    """The first valid Russian number as +7XXXXXXXXXX, digits or dictated words."""
    import phonenumbers

    client_text, _ = split_transcript(text or "", channel)
    cleaned = re.sub(r"№\s*\d+", " ", client_text)
    for match in phonenumbers.PhoneNumberMatcher(cleaned, "RU", leniency=phonenumbers.Leniency.POSSIBLE):
        if _price_or_size_context(cleaned, match.start, match.end):
            continue
        phone = _valid_russian(match.number)
        if phone:
            return phone
    for candidate in [m.group(0) for m in PHONE_FALLBACK_RE.finditer(cleaned)] + _words_to_digits(
        client_text
    ):
        digits = re.sub(r"[^\d+]", "", candidate)
        try:
            parsed = phonenumbers.parse(digits, "RU")
        except phonenumbers.NumberParseException:
            continue
        phone = _valid_russian(parsed)
        if phone:
            return phone
    return None


def _price_or_size_context(text: str, start: int, end: int) -> bool:
    after = text[end : end + 6].lower()
    before = text[max(0, start - 3) : start].lower()
    return bool(re.match(r"\s*(?:₽|р\b|руб|%|тыс|000)", after) or re.search(r"[rр№]\s*$", before))
