"""The assistant's words: the instant reply built from what is known about the lead.

It greets, answers what was asked from the business's own facts (domain.knowledge), confirms what
it understood or asks for what is missing — never both in one breath — and never confirms a slot
nobody checked or a time already past. Russian or English, as the client writes; templates come
from the business config.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo

from leadflow.business import BusinessConfig, Service, Templates
from leadflow.domain.knowledge import (
    Answers,
    answer_topics,
    asked_topics,
    asks_something,
    facts_text,
    is_grounded,
    lead_services,
    price_lines,
)
from leadflow.domain.models import Intent, Lead
from leadflow.domain.qualify.text import is_emoji_only
from leadflow.domain.wording import (
    MONTHS_GEN,
    WEEKDAYS_ACC,
    describe_day,
    describe_when,
    service_facts,
    service_name,
)

__all__ = ["MONTHS_GEN", "WEEKDAYS_ACC", "Reply", "build_reply", "compose_reply", "describe_day"]

YES = re.compile(r"^\s*(да|подтверждаю|подтверждаем|буду|придем|придём|ок|ok|yes|\+)\b", re.I)
NO = re.compile(r"^\s*(нет|отмена|отменить|отмените|не смогу|не приду|no)\b", re.I)
MOVE = re.compile(r"перенес|перенос|другое время|другой день", re.I)
LENGTH_LIMITS = {"sms": 335, "instagram": 1000, "telegram": 4096, "whatsapp": 4096, "vk": 4096}


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


def time_has_passed(lead: Lead, tz: ZoneInfo) -> bool:
    """The day (or today's clock time) the client named is already over when they wrote: «сегодня в 10
    утра» sent at 13:40. A lower bound («после 18») is still open after it began."""
    if not lead.preferred_date:
        return False
    written = lead.last_message_at.astimezone(tz)
    if lead.preferred_date != written.date():
        return lead.preferred_date < written.date()
    if not lead.preferred_time or (lead.preferred_window or "").startswith("after "):
        return False
    return lead.preferred_time < f"{written:%H:%M}"


def missing_fields(lead: Lead, business: BusinessConfig) -> list[str]:
    """What the assistant still asks for. A day with a part of the day or a bound is a time
    («завтра вечером»: the administrator offers the slot); a time already past is none."""
    missing = []
    required = business.qualify.required
    if "service" in required and not lead.service:
        missing.append("service")
    has_time = bool(lead.preferred_date and (lead.preferred_time or lead.preferred_window))
    if "time" in required and (not has_time or time_has_passed(lead, business.tz)):
        missing.append("time")
    phone_needed = "phone" in required or business.qualify.phone_when_missing
    if phone_needed and not lead.contact.phone:
        missing.append("phone")
    if len(business.branches) > 1 and not lead.branch:
        missing.append("branch")
    return missing


@dataclass(frozen=True)
class Reply:
    text: str | None
    unanswered: bool = False  # the client asked what the facts do not answer: a person answers it


def compose_reply(
    lead: Lead, business: BusinessConfig, *, first: bool, today: date, is_open_now: bool, **more: Any
) -> str | None:
    """The reply to the lead's latest message; None when the assistant should stay quiet."""
    return build_reply(lead, business, first=first, today=today, is_open_now=is_open_now, **more).text


def build_reply(
    lead: Lead,
    business: BusinessConfig,
    *,
    first: bool,
    today: date,
    is_open_now: bool,
    text: str = "",
    asked: Intent | str | None = None,
    llm_answer: str | None = None,
    offer: str | None = None,
    unheard_voice: bool = False,
) -> Reply:
    """The reply to the lead's latest message (``text``), in the client's language. ``today``: the
    day the message was written, in the business's time zone (not the day it is processed).
    ``asked``: what this message alone was (a question in a booking conversation is answered, not
    met with the booking again). ``llm_answer``: the LLM's answer to a question, used only when it
    says nothing the facts do not. ``unheard_voice``: the message was a voice message nobody could
    transcribe — the client is asked to write."""
    language = lead.language
    texts = business.messages.in_language(language)
    parts: list[str] = []
    if first:
        name = lead.contact.name
        parts.append(texts.greeting.format(name_part=f", {name}" if name else ""))

    unanswered = False
    if lead.intent == Intent.not_target:
        if not is_emoji_only(text):
            return Reply(texts.not_target)
        parts.append(texts.emoji_only)  # «💅🔥»: no words yet, but maybe a client
    elif unheard_voice:
        parts.append(texts.voice_unheard)
    elif lead.media and not lead.service and not lead.preferred_date:
        parts.append(texts.media_ack)
    else:
        answers = _answers(lead, business, texts, today, text, llm_answer)
        parts.extend(answers.sentences)
        booking: list[str] = []
        if lead.intent == Intent.question:
            booking = [texts.booking_offer] if answers.priced else []
            unanswered = answers.unanswered or not answers.sentences
        else:
            only_asked = asked == Intent.question
            booking = _booking(lead, business, texts, today, priced=answers.priced, only_asks=only_asked)
            if offer:  # real free slots instead of repeating the wish («Администратор подтвердит время»)
                booking = [offer, *(_ask_phone(texts) if "phone" in missing_fields(lead, business) else [])]
            unanswered = answers.unanswered or (only_asked and not answers.sentences)
        if unanswered:
            parts.append(texts.question_ack)  # what was asked first, then the booking
        parts.extend(booking)
    if not is_open_now:
        parts.append(texts.off_hours)
    said = " ".join(p for p in parts if p)
    limit = LENGTH_LIMITS.get(lead.client_address()[0], 4096)
    if business.privacy_policy_url and (first or lead.channel == "form"):
        # 152-FZ: consent to processing personal data — one short line, never cut off by the limit.
        line = texts.privacy.format(url=business.privacy_policy_url)
        return Reply(_fit(said, limit - len(line) - 1) + "\n" + line, unanswered)
    return Reply(_fit(said, limit), unanswered)


def _answers(
    lead: Lead, business: BusinessConfig, texts: Templates, today: date, text: str, llm_answer: str | None
) -> Answers:
    """What the client asked, answered from the knowledge section, prices and hours — or by the LLM
    when its answer keeps to those facts."""
    if lead.intent != Intent.question and not (text and asks_something(text)):
        return Answers()
    if llm_answer and is_grounded(llm_answer, facts_text(business), text):
        return Answers([llm_answer.strip()])
    topics = asked_topics(text, business) if text else []
    answers = answer_topics(topics, lead, business, texts, today)
    if lead.intent == Intent.question and not topics:
        # «А педикюр делаете?»: the service itself is the question — it exists, and this is its price
        lines = price_lines(lead_services(lead, business), texts, lead.language)
        if lines:
            return Answers(lines, priced=True)
    return answers


def _booking(
    lead: Lead,
    business: BusinessConfig,
    texts: Templates,
    today: date,
    *,
    priced: bool,
    only_asks: bool = False,
) -> list[str]:
    """Confirm what is known, or say what will be booked and ask for what is missing — never both.
    ``only_asks``: what is missing, without saying the booking again (the message was a question)."""
    language = lead.language
    missing = missing_fields(lead, business)
    passed = time_has_passed(lead, business.tz)
    day = lead.preferred_date if lead.preferred_date and lead.preferred_date >= today else None
    passed_today = passed and day is not None
    # a time already past is asked about below, not repeated here as if it were booked
    when = (
        ""
        if passed_today
        else describe_when(day, lead.preferred_time, lead.preferred_window, today, language)
    )
    services = lead_services(lead, business)
    parts: list[str] = []
    if services and not only_asks:
        names = _service_names(services, language)
        slot = f" {when}" if when else ""
        needs_time = "time" in missing or passed
        template = texts.booking_start if needs_time else texts.booking_confirm
        parts.append(template.format(service=names, when=slot))
        if len(services) > 1 and not priced:
            total = service_facts(services, language)
            if total:
                parts.append(texts.services_total.format(facts=total))
    for field in missing:
        if field == "service":
            parts.append(texts.ask_service)
        elif field == "time":
            parts.append(_ask_time(lead, texts, day, passed_today))
        elif field == "phone":
            parts.append(texts.ask_phone)
        elif field == "branch":
            parts.append(
                texts.ask_branch.format(branches=_one_of((b.title for b in business.branches), texts.or_word))
            )
    return parts


def _ask_phone(texts: Templates) -> list[str]:
    return [texts.ask_phone]


def _ask_time(lead: Lead, texts: Templates, day: date | None, passed_today: bool) -> str:
    if passed_today:
        return texts.time_passed.format(time=lead.preferred_time)
    has_hour = bool(lead.preferred_time or lead.preferred_window)
    if day and not has_hour:
        return texts.ask_hour
    if has_hour and not day:
        return texts.ask_day
    return texts.ask_time


def _service_names(services: list[Service], language: str) -> str:
    """«маникюр и педикюр» (accusative: «Записываю вас на женскую стрижку»); English as named."""
    if language == "en":
        names = [_mid_sentence(service_name(s, "en")) for s in services]
        return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    names = [accusative(s.name) for s in services]
    return ", ".join(names[:-1]) + " и " + names[-1] if len(names) > 1 else names[0]


def _mid_sentence(name: str) -> str:
    return name[:1].lower() + name[1:] if len(name) > 1 and name[1:2].islower() else name


def _one_of(names: Iterable[str], or_word: str = "или") -> str:
    """«Центр», «Арбат» или «Химки»."""
    quoted = [f"«{name}»" for name in names]
    return ", ".join(quoted[:-1]) + f" {or_word} " + quoted[-1] if len(quoted) > 1 else "".join(quoted)


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
