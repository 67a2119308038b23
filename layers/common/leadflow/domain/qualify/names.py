"""The client's own first name (or the booked person's) in the nominative."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from leadflow.domain.qualify import lexicon

if TYPE_CHECKING:
    pass
from leadflow.domain.qualify.morphology import is_known_word, morph, transliterate
from leadflow.domain.qualify.text import Message, lazy_re


@functools.lru_cache(maxsize=20_000)
def name_parse(word: str) -> Any | None:
    if len(word) < 2 or not word[0].isupper():
        return None
    lower = word.lower()
    if not is_known_word(lower):
        return None
    names = [p for p in morph().parse(lower) if "Name" in p.tag]
    nominative = [p for p in names if "nomn" in p.tag and "sing" in p.tag]
    return (nominative or names or [None])[0]


def _nominative(word: str, parse: Any) -> str:
    if "nomn" in parse.tag and "sing" in parse.tag:
        return word[0].upper() + word[1:].lower()
    inflected = parse.inflect({"nomn", "sing"})
    form = inflected.word if inflected else parse.normal_form
    return form[0].upper() + form[1:]


def _latin_name(word: str) -> str | None:
    if not (word[:1].isupper() and word.isascii() and word.isalpha() and len(word) >= 3):
        return None
    return word if name_parse(transliterate(word).capitalize()) else None


def is_placeholder_name(name: str | None) -> bool:
    """«Клиент», «Имя», «тест»: what a form or a CRM puts where the client gave no name."""
    return name is not None and name.strip().lower().rstrip(".!") in lexicon.NAME_PLACEHOLDERS


def _first_name_in(words: list[str]) -> str | None:
    for word in words[:3]:
        if word.lower() in lexicon.NAME_PLACEHOLDERS:
            return None
        parse = name_parse(word[:1].upper() + word[1:]) if word[:1].isalpha() else None
        if parse is not None:
            return _nominative(word, parse)
        latin = _latin_name(word[:1].upper() + word[1:]) if word.isascii() else None
        if latin:
            return latin
    return None


OWN_NAME_RES = (
    lazy_re(r"\bменя\s+зовут\s+(\w+)", re.IGNORECASE),
    lazy_re(r"\bменя\s+(\w+)\s+зовут\b", re.IGNORECASE),
    lazy_re(r"\bмо[её]\s+имя\s+(\w+)", re.IGNORECASE),
    lazy_re(r"\bзовут\s+(\w+)", re.IGNORECASE),
    lazy_re(r"(?:^|[\s,.!])(?:это|я)\s+(\w+)", re.IGNORECASE),
    lazy_re(r"\bс\s+уважением,?\s+(\w+)", re.IGNORECASE),
    lazy_re(r"\bmy name is\s+(\w+)|\bменя\s+zovut\s+(\w+)|\bmenya zovut\s+(\w+)", re.IGNORECASE),
)


# «I'm Maria», «this is Emma»: an English introduction names the sender whatever the name's origin
ENGLISH_INTRO_RE = lazy_re(r"\b(?i:my name is|i[’']m|i am|this is|it[’']s|it is|call me)\s+([A-Z][a-z]+)\b")


BOOKED_PERSON_RES = (
    lazy_re(r"\bна\s+имя\s+(\w+)", re.IGNORECASE),
    lazy_re(r"^\s*на\s+(\w+)", re.IGNORECASE),
)


def extract_name(message: Message) -> str | None:
    for key in ("имя", "name"):
        if key in message.form_fields:
            words = message.form_fields[key].split()
            return _first_name_in(words) if words else None
    raw = message.raw
    for answer in message.operator_asked_name:
        words = re.findall(r"[A-Za-zА-Яа-яЁё]+", answer)
        if len(words) > 2 and [w.lower() for w in words[:2]] == ["на", "меня"]:
            words = words[2:]  # «на меня, Инна»
        elif words and words[0].lower() == "на":
            continue  # «на Наталью» names the person being booked: a fallback below
        name = _first_name_in([w[:1].upper() + w[1:] for w in words])
        if name:
            return name
    for pattern in OWN_NAME_RES:
        for match in pattern.finditer(raw):
            word = next(g for g in match.groups() if g)
            name = (
                _first_name_in([word[:1].upper() + word[1:]])
                if word[:1].isupper() or "зовут" in match.group(0)
                else None
            )
            if name:
                return name
    if message.english:
        for match in ENGLISH_INTRO_RE.finditer(raw):
            word = match.group(1)
            if word.lower() not in lexicon.ENGLISH_MARKERS and word.lower() not in lexicon.ENGLISH_NOT_NAMES:
                return word
    signature = _signature_name(raw)
    if signature:
        return signature
    for answer in message.operator_asked_name:
        answer_match = BOOKED_PERSON_RES[1].match(answer)
        if answer_match:
            word = answer_match.group(1)
            name = _first_name_in([word[:1].upper() + word[1:]])
            if name:
                return name
    booked = BOOKED_PERSON_RES[0].search(raw)
    if booked:
        name = _first_name_in([booked.group(1)])
        if name:
            return name
    return _relative_name(raw)


SEGMENT_RE = lazy_re(r"[\w\s\-+]+(?:[^\w\s\-+]+|$)")


LEADING_NAME_RE = lazy_re(r"^\s*([А-ЯЁ][а-яё]+)(?:\s*,|\s+(?=(?:\+7|8)?[\s\-(]*\d{3}))")


def _signature_name(raw: str) -> str | None:
    """A name standing alone between punctuation or emoji: «…в 12, Света, 8913…», «…15:00? Марина»."""
    leading = LEADING_NAME_RE.match(raw)
    if leading and leading.group(1).lower() not in lexicon.GREETING_WORDS:
        parse = name_parse(leading.group(1))
        if parse is not None:
            return _nominative(leading.group(1), parse)
    for match in SEGMENT_RE.finditer(raw):
        segment = match.group(0)
        if "?" in segment[len(segment.rstrip("?!.,;:)( ")) :] or segment.rstrip().endswith("?"):
            continue  # «Сергей?» asks for somebody else
        words = re.findall(r"[A-Za-zА-Яа-яЁё]+", segment)
        if not 1 <= len(words) <= 3:
            continue
        rest = re.sub(r"[A-Za-zА-Яа-яЁё]+", "", segment)
        if re.search(r"\d", rest) and not re.search(r"\d{5,}|\d[\d\s\-()]{8,}", rest):
            continue
        if words[0].lower() in lexicon.STAFF_WORDS or words[0].lower() in lexicon.GREETING_WORDS:
            continue
        parse = name_parse(words[0])
        if parse is not None and all(_name_or_surname(w) for w in words[1:]):
            return _nominative(words[0], parse)
        if len(words) == 1:
            latin = _latin_name(words[0])
            if latin:
                return latin
    return None


@functools.lru_cache(maxsize=20_000)
def _name_or_surname(word: str) -> bool:
    if not word[:1].isupper():
        return word.lower() in {"тел", "телефон", "номер"}
    return any(tag in parse.tag for parse in morph().parse(word.lower()) for tag in ("Name", "Surn", "Patr"))


def _relative_name(raw: str) -> str | None:
    words = re.findall(r"[A-Za-zА-Яа-яЁё]+", raw)
    for index, word in enumerate(words):
        # «записать маму, Галину»: the relative is being booked; «подруга Маша посоветовала» is not a booking
        booked = any(w.lower().startswith(("запис", "запиш")) for w in words[max(0, index - 4) : index])
        if booked and word.lower() in lexicon.RELATIVE_WORDS:
            for follower in words[index + 1 : index + 4]:
                parse = name_parse(follower)
                if parse is not None:
                    return _nominative(follower, parse)
    return None
