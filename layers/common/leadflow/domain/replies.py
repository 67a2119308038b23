"""The assistant's words: the instant reply built from what is known about the lead.

It greets, confirms what it understood, asks only for what is missing, and never confirms a
slot nobody checked. Templates come from the business config (Russian defaults).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import date
from typing import Literal

from leadflow.business import BusinessConfig
from leadflow.domain.models import Intent, Lead

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
WEEKDAYS_ACC = ["понедельник", "вторник", "среду", "четверг", "пятницу", "субботу", "воскресенье"]
YES = re.compile(r"^\s*(да|подтверждаю|подтверждаем|буду|придем|придём|ок|ok|yes|\+)\b", re.I)
NO = re.compile(r"^\s*(нет|отмена|отменить|отмените|не смогу|не приду|no)\b", re.I)
MOVE = re.compile(r"перенес|перенос|другое время|другой день", re.I)
LENGTH_LIMITS = {"sms": 335, "instagram": 1000, "telegram": 4096, "whatsapp": 4096, "vk": 4096}


def describe_day(day: date, today: date) -> str:
    delta = (day - today).days
    named = {0: "сегодня", 1: "завтра", 2: "послезавтра"}.get(delta)
    if named:
        return named
    prefix = "во" if day.weekday() == 1 else "в"
    return f"{prefix} {WEEKDAYS_ACC[day.weekday()]}, {day.day} {MONTHS_GEN[day.month - 1]}"


@functools.cache
def accusative(phrase: str) -> str:
    """«Женская стрижка» → «женскую стрижку», for «Записываю вас на …»: the leading adjectives and
    noun are inflected; what follows (a preposition, a brand) stays as written."""
    from leadflow.domain.qualify.morphology import morph

    words = phrase.lower().split()
    result = []
    for i, word in enumerate(words):
        parsed = morph().parse(word)[0]
        tags = parsed.tag
        if {"NOUN", "ADJF"} & set(tags.grammemes) and "nomn" in tags:
            inflected = parsed.inflect({"accs"})
            result.append(inflected.word if inflected else word)
            if "NOUN" in tags:
                result.extend(words[i + 1 :])
                break
        else:
            result.extend(words[i:])
            break
    return " ".join(result)


def missing_fields(lead: Lead, business: BusinessConfig) -> list[str]:
    missing = []
    required = business.qualify.required
    if "service" in required and not lead.service:
        missing.append("service")
    if "time" in required and not (lead.preferred_date and lead.preferred_time):
        missing.append("time")
    phone_needed = "phone" in required or business.qualify.phone_when_missing
    if phone_needed and not lead.contact.phone:
        missing.append("phone")
    if len(business.branches) > 1 and not lead.branch:
        missing.append("branch")
    return missing


def compose_reply(
    lead: Lead, business: BusinessConfig, *, first: bool, today: date, is_open_now: bool,
    unheard_voice: bool = False,
) -> str | None:  # fmt: skip
    """The reply to the lead's latest message; None when the assistant should stay quiet.
    ``unheard_voice``: it was a voice message nobody could transcribe — the client is asked to write."""
    texts = business.messages
    parts: list[str] = []
    if first:
        name = lead.contact.name
        parts.append(texts.greeting.format(name_part=f", {name}" if name else ""))

    if lead.intent == Intent.not_target:
        return texts.not_target
    if unheard_voice:
        parts.append(texts.voice_unheard)
    elif lead.media and not lead.service and not lead.preferred_date:
        parts.append(texts.media_ack)
    elif lead.intent == Intent.question:
        parts.append(_answer_question(lead, business))
    else:
        service = business.service(lead.service)
        if service:
            when = ""
            if lead.preferred_date:
                when += " " + describe_day(lead.preferred_date, today)
            if lead.preferred_time:
                when += f" в {lead.preferred_time}"
            parts.append(texts.booking_confirm.format(service=accusative(service.name), when=when))
        questions = {
            "service": texts.ask_service,
            "time": texts.ask_time,
            "phone": texts.ask_phone,
            "branch": texts.ask_branch.format(branches=_one_of(b.title for b in business.branches)),
        }
        parts.extend(questions[field] for field in missing_fields(lead, business))
    if not is_open_now:
        parts.append(texts.off_hours)
    text = " ".join(p for p in parts if p)
    limit = LENGTH_LIMITS.get(lead.client_address()[0], 4096)
    if business.privacy_policy_url and (first or lead.channel == "form"):
        # 152-FZ: consent to processing personal data — one short line, never cut off by the limit.
        line = texts.privacy.format(url=business.privacy_policy_url)
        return _fit(text, limit - len(line) - 1) + "\n" + line
    return _fit(text, limit)


def _answer_question(lead: Lead, business: BusinessConfig) -> str:
    service = business.service(lead.service)
    if service and (service.price or service.duration_min):
        facts = []
        if service.price:
            facts.append(
                f"стоимость от {service.price} ₽" if str(service.price).isdigit() else str(service.price)
            )
        if service.duration_min:
            facts.append(f"около {service.duration_min} мин")
        return f"{service.name}: {', '.join(facts)}. Хотите записаться? Подскажите удобный день и время."
    return business.messages.question_ack


def _one_of(names: Iterable[str]) -> str:
    """«Центр», «Арбат» или «Химки»."""
    quoted = [f"«{name}»" for name in names]
    return ", ".join(quoted[:-1]) + " или " + quoted[-1] if len(quoted) > 1 else "".join(quoted)


def _fit(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return cut[: cut.rfind(" ")] + "…" if " " in cut else cut + "…"


def reminder_answer(text: str) -> Literal["confirm", "cancel", "move"] | None:
    """A booked client's answer to a reminder; «перенести» first: «да, но можно перенести?» asks to move."""
    if MOVE.search(text):
        return "move"
    if YES.search(text):
        return "confirm"
    if NO.search(text):
        return "cancel"
    return None
