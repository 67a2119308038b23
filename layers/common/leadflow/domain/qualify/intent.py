"""Booking, question or not a target."""

from __future__ import annotations

import re

from leadflow.domain.models import Intent
from leadflow.domain.qualify import lexicon
from leadflow.domain.qualify.names import name_parse
from leadflow.domain.qualify.text import Message, any_of, lazy_re

TEST_WORD_RE = lazy_re(r"\s*(?:тест\w*|test\w*|проверка)\s*[.!]*\s*", re.IGNORECASE)


def _content_words(message: Message) -> list[str]:
    return [t.text for t in message.tokens if t.text not in lexicon.GREETING_WORDS]


def detect_intent(
    message: Message, service: str | None, has_when: bool, has_contact: bool, slot_request: bool = False
) -> Intent:
    """``slot_request``: a clause names a service and a day or time and asks nothing
    («Стрижка и окрашивание в субботу, сколько по времени займет?»)."""
    norm = message.norm
    text = norm
    if message.is_form:
        comment = message.form_fields.get("комментарий", message.form_fields.get("comment", ""))
        text = comment.lower().replace("ё", "е")
        name = message.form_fields.get("имя", message.form_fields.get("name", "")).lower().strip()
        # A test submission says so in its text, or in its name when it has no text at all. A
        # placeholder name («Клиент», «Имя») only means the client gave none: the form is a lead.
        if TEST_WORD_RE.fullmatch(text) or (not text.strip() and TEST_WORD_RE.fullmatch(name)):
            return Intent.not_target
    if any_of(lexicon.NOT_TARGET_PATTERNS, text):
        return Intent.not_target
    question = any_of(lexicon.QUESTION_PATTERNS, text)
    affirmed = _strip_negated(text)
    booking = any_of(lexicon.BOOKING_PATTERNS, affirmed) or (
        not question and any_of(lexicon.WEAK_BOOKING_PATTERNS, affirmed)
    )
    wish = any_of(lexicon.WISH_PATTERNS, POLITE_ASK_RE.sub(" ", text))
    wished = wish and bool(service or has_when) and not _wish_is_question(text)
    if any_of(lexicon.NEGATIVE_REVIEW_PATTERNS, text) and not booking and not wished:
        return Intent.not_target
    if not service and not booking and _asks_for_somebody(message.raw):
        return Intent.not_target
    if booking or wished:
        return Intent.booking
    if question:
        # a service asked for on a day, next to a question about it, is a booking
        return Intent.booking if slot_request else Intent.question
    if not (service and has_when) and "?" not in text and any_of(lexicon.THANKS_PATTERNS, text):
        return Intent.not_target  # «Спасибо Ане за маникюр, очень довольна», «see you tomorrow!»
    if service or has_when:
        return Intent.booking  # «брови завтра в 10?», «маникюр к 11 есть?»: a slot asked for
    if "?" in text:
        return Intent.question
    if message.is_form and has_contact:
        return Intent.booking
    if not _content_words(message):
        return Intent.not_target
    return Intent.not_target if not wish else Intent.booking


# «подскажите, пожалуйста, сколько стоит…»: the «пожалуйста» of a question is no wish
POLITE_ASK_RE = lazy_re(r"\b(?:под)?скажите,?\s+пожалуйста\b")


ASKS_FOR_SOMEBODY_RE = lazy_re(r"(?:^|[\s,.!])(?:алло,?\s+)?([А-ЯЁ][а-яё]+)\s*\?")


def _asks_for_somebody(raw: str) -> bool:
    """«алло, Сергей?»: a caller asking for a person we do not know is a wrong number."""
    return any(name_parse(m.group(1)) is not None for m in ASKS_FOR_SOMEBODY_RE.finditer(raw))


def _strip_negated(text: str) -> str:
    return re.sub(r"\bне\s+(?:\w+\s+)?(?:приду|придем|подойду|приеду|запишусь)\b", " ", text)


def _wish_is_question(text: str) -> bool:
    """«можно оплатить картой?» is a question; «можно на завтра?» is a booking."""
    for match in re.finditer(r"\bможно\s+(?:ли\s+)?(\w+)", text):
        if re.match(r"оплат|расплат|узнать|уточнить|спросить|у\b|с\b|картой|наличн|парков", match.group(1)):
            return True
    return False
