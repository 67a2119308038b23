"""What a client asks about, and the answer from the business's own facts — never anything else.

Topics are found by lemmas (the qualifier's morphology), so «парковка», «припарковаться» and
«где парковаться?» all reach the parking answer; the owner's own questions (`knowledge.qa`) are
matched the same way and win over a built-in topic on the words they cover. A topic the config
has no fact for is not answered: the client is told an administrator will answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from leadflow.business import Branch, BusinessConfig, Service, Templates
from leadflow.domain.calendar import Calendar
from leadflow.domain.models import Lead
from leadflow.domain.qualify import lexicon
from leadflow.domain.qualify.text import Message, any_of, prepare
from leadflow.domain.wording import (
    MONTHS_EN,
    MONTHS_GEN,
    capitalised,
    day_hours,
    describe_day,
    service_facts,
    service_name,
    week_hours,
)

# Lemma sequences that name a topic; the words of one cue may stand up to CUE_GAP words apart.
CUES: dict[str, tuple[tuple[str, ...], ...]] = {
    "price": (
        ("сколько", "стоить"), ("цена",), ("стоимость",), ("почем",), ("прайс",), ("скока",),
        ("how", "much"), ("price",), ("cost",),
    ),
    "duration": (
        ("сколько", "длиться"), ("длиться",), ("как", "долго"), ("сколько", "по", "время"),
        ("длительность",), ("how", "long"),
    ),
    "address": (
        ("где",), ("адрес",), ("как", "добраться"), ("как", "проехать"), ("как", "пройти"),
        ("как", "найти"), ("находиться",), ("where",), ("address",), ("location",), ("located",),
        ("get", "there"),
    ),
    "parking": (
        ("парковка",), ("припарковаться",), ("парковаться",), ("припарковать",), ("стоянка",),
        ("parking",), ("park",),
    ),
    "hours": (
        ("до", "сколько"), ("открываться",), ("закрываться",), ("работать",), ("час", "работа"),
        ("график",), ("режим", "работа"), ("open",), ("opening",), ("close",),
    ),
    "payment": (
        ("оплата",), ("оплатить",), ("оплачивать",), ("расплатиться",), ("карта",), ("наличные",),
        ("наличка",), ("сбп",), ("pay",), ("payment",), ("card",), ("cash",),
    ),
    "what_to_bring": (
        ("взять", "с", "себя"), ("брать", "с", "себя"), ("что", "взять"), ("что", "брать"),
        ("принести",), ("bring",),
    ),
    "cancellation": (("отмена",), ("отменить",), ("отменять",), ("штраф",), ("cancel",), ("cancellation",)),
}  # fmt: skip
CUE_GAP = 2
# Words an owner's question is not told apart by («есть ли у вас …?», «can you …?»).
# fmt: off
STOP_LEMMAS = frozenset((
    "а", "и", "или", "ли", "же", "бы", "не", "ни", "есть", "быть", "у", "вы", "ваш", "вас", "я", "мы",
    "мой", "в", "во", "на", "с", "со", "по", "для", "о", "об", "от", "к", "ко", "до", "за", "из", "это",
    "как", "что", "какой", "сколько", "можно", "мочь", "нужно", "надо", "ещё", "еще", "уже",
    "a", "an", "the", "is", "are", "be", "do", "does", "you", "your", "i", "we", "my", "our", "can",
    "could", "of", "to", "for", "in", "on", "at", "it", "there", "any", "have", "has", "what", "how",
))
# fmt: on
FACT_TOPICS = ("parking", "payment", "what_to_bring", "cancellation")
SERVICE_TOPICS = ("price", "duration")
# What an answer must not promise unless the owner wrote it: discounts, gifts, free slots, bookings.
PROMISE_WORDS = re.compile(
    r"скидк|бесплатн|акци|подар|гарант|окошк|окн[оа]\b|свободн|записал|забронир|"
    r"discount|free|gift|guarantee|available|booked",
    re.IGNORECASE,
)
DATE_RE = re.compile(
    r"\b\d{1,2}\s+(?:"
    + "|".join([*MONTHS_GEN, *MONTHS_EN])
    + r")\b|\b(?:"
    + "|".join(MONTHS_EN)
    + r")\s+\d{1,2}\b",
    re.IGNORECASE,
)
NUMBER_RE = re.compile(r"\d+(?:[ \u00a0\u202f]\d{3})*(?:[.,:]\d+)?")


@dataclass(frozen=True)
class Topic:
    kind: str  # a CUES key, or "qa"
    at: int  # the token it starts at: answers follow the order of the questions
    qa: int | None = None  # which of knowledge.qa


@dataclass
class Answers:
    sentences: list[str] = field(default_factory=list)
    unanswered: bool = False  # something was asked the facts do not answer
    priced: bool = False  # a service's price was told: the booking offer follows


def asks_something(text: str) -> bool:
    """A question mark or a question's words («где вы находитесь», «адрес скиньте»)."""
    return "?" in text or any_of(lexicon.QUESTION_PATTERNS, prepare(text).norm)


def asked_topics(text: str, business: BusinessConfig) -> list[Topic]:
    """The topics one message asks about, in the order it asks them."""
    message = prepare(text)
    topics: list[Topic] = []
    covered: set[int] = set()
    for index, qa in enumerate(business.knowledge.qa):
        matched = _qa_match(message, tuple(qa.questions))
        if matched is not None:
            topics.append(Topic("qa", min(matched), index))
            covered |= matched
    for kind, cues in CUES.items():
        for cue in cues:
            at = _cue_at(message, cue, covered)
            if at is not None:
                topics.append(Topic(kind, at))
                break
    return sorted(topics, key=lambda t: t.at)


def _cue_at(message: Message, cue: tuple[str, ...], covered: set[int]) -> int | None:
    tokens = message.tokens
    for start, token in enumerate(tokens):
        if start in covered or cue[0] not in token.lemmas:
            continue
        position = start
        for word in cue[1:]:
            following = range(position + 1, min(position + 2 + CUE_GAP, len(tokens)))
            position = next((i for i in following if word in tokens[i].lemmas), -1)
            if position < 0:
                break
        else:
            return start
    return None


@functools.lru_cache(maxsize=1024)
def _phrasing_words(phrasing: str) -> tuple[frozenset[str], ...]:
    """The words an owner's phrasing is recognised by, each as its possible lemmas."""
    words = [t.lemmas for t in prepare(phrasing).tokens]
    return tuple(w for w in words if not w & STOP_LEMMAS)


def _qa_match(message: Message, phrasings: tuple[str, ...]) -> set[int] | None:
    """The message tokens that ask one of the phrasings: all its words (one may be missing when it
    has four or more), in any word form and order."""
    for phrasing in phrasings:
        words = _phrasing_words(phrasing)
        if not words:
            continue
        found = {i for w in words for i, token in enumerate(message.tokens) if w & token.lemmas}
        hits = sum(1 for w in words if any(w & token.lemmas for token in message.tokens))
        if hits == len(words) or (len(words) >= 4 and hits >= len(words) - 1):
            return found
    return None


# --------------------------------------------------------------------------- the answers


def answer_topics(
    topics: Sequence[Topic],
    lead: Lead,
    business: BusinessConfig,
    texts: Templates,
    today: date,
) -> Answers:
    """One sentence or two per topic, from the config only."""
    language = lead.language
    result = Answers()
    said: set[str] = set()
    services_told = False

    def say(sentence: str | None) -> None:
        if sentence is None:
            result.unanswered = True
        elif sentence and sentence not in said:
            said.add(sentence)
            result.sentences.append(sentence)

    for topic in topics:
        if topic.kind in SERVICE_TOPICS:
            if services_told:
                continue  # «сколько стоит и сколько длится?»: one line says both
            services_told = True
            services = lead_services(lead, business)
            if not services:
                say(texts.ask_priced_service)
                continue
            lines = price_lines(services, texts, language)
            if lines is None:
                say(None)
                continue
            for line in lines:
                say(line)
            result.priced = True
        elif topic.kind == "qa" and topic.qa is not None:
            qa = business.knowledge.qa[topic.qa]
            say((qa.answer_en if language == "en" else None) or qa.answer)
        elif topic.kind == "address":
            address: list[str | None] = [*_address(lead, business, texts, language)] or [None]
            for sentence in address:
                say(sentence)
        elif topic.kind == "hours":
            say(_hours(lead, business, texts, language, today))
        elif topic.kind == "parking":
            say(_place_fact("parking", lead, business, language))
        elif topic.kind in FACT_TOPICS:
            say(business.knowledge.fact(topic.kind, language))
    return result


def price_lines(services: Sequence[Service], texts: Templates, language: str) -> list[str] | None:
    """«Маникюр — 1 200 ₽, 1 час.» per service, and the sum when there are several; None when the
    config knows neither the price nor the duration."""
    lines = []
    for service in services:
        facts = service_facts([service], language)
        if facts:
            lines.append(texts.price_line.format(service=service_name(service, language), facts=facts))
    if not lines:
        return None
    if len(services) > 1:
        total = service_facts(services, language)
        if total:
            lines.append(texts.services_total.format(facts=total))
    return lines


def lead_services(lead: Lead, business: BusinessConfig) -> list[Service]:
    ids = lead.services or ([lead.service] if lead.service else [])
    return [s for s in (business.service(i) for i in ids) if s is not None]


def _branch(lead: Lead, business: BusinessConfig) -> Branch | None:
    if len(business.branches) == 1:
        return business.branches[0]
    return business.branch(lead.branch)


def _address(lead: Lead, business: BusinessConfig, texts: Templates, language: str) -> list[str]:
    knowledge = business.knowledge
    branch = _branch(lead, business)
    if branch is None and len(business.branches) > 1:
        known = [b for b in business.branches if b.address]
        if known:
            listed = "; ".join(f"«{b.title}» — {b.address}" for b in known)
            return [texts.addresses.format(addresses=listed)]
    address = (branch.address if branch else None) or knowledge.fact("address", language)
    if not address:
        return []
    directions = _place_fact("directions", lead, business, language)
    return [texts.address.format(address=address.rstrip(".")), *([directions] if directions else [])]


def _place_fact(name: str, lead: Lead, business: BusinessConfig, language: str) -> str | None:
    """A branch's own fact before the business's; for an English client the English one first."""
    branch = _branch(lead, business)
    english = getattr(business.knowledge.en, name) if language == "en" else None
    return english or (getattr(branch, name) if branch else None) or getattr(business.knowledge, name)


def _hours(lead: Lead, business: BusinessConfig, texts: Templates, language: str, today: date) -> str:
    known = _branch(lead, business)
    branches: list[Branch | None] = [known] if known or not business.branches else list(business.branches)
    asked_day = lead.preferred_date if lead.preferred_date and lead.preferred_date >= today else None
    said = []
    for branch in branches:
        calendar = Calendar.for_branch(business, branch.id if branch else None)
        title = f"«{branch.title}»: " if branch and len(branches) > 1 else ""
        if asked_day:  # «работаете в воскресенье?»: that day's hours
            ranges = calendar.ranges_on(asked_day)
            day = capitalised(describe_day(asked_day, today, language))
            if title:
                day = title + day[:1].lower() + day[1:]
            said.append(
                texts.hours_day.format(day=day, hours=day_hours(ranges, language))
                if ranges
                else texts.closed_day.format(day=day)
            )
        else:
            said.append(title + week_hours(calendar.hours, language))
    if asked_day:
        return " ".join(said)
    return texts.hours.format(hours="; ".join(said))


# --------------------------------------------------------------------------- for the LLM


def facts_text(business: BusinessConfig) -> str:
    """Every fact the assistant may tell a client, as plain lines: the LLM answers from these only."""
    lines = ["Services (name: price, duration):"]
    for service in business.services:
        facts = service_facts([service]) or "price and duration: ask the administrator"
        minutes = f" ({service.duration_min} min)" if service.duration_min else ""
        lines.append(f"- {service.name}: {facts}{minutes}")
    places = business.branches or [None]
    knowledge = business.knowledge
    lines.append("Places (address; how to get there; parking; opening hours):")
    for branch in places:
        calendar = Calendar.for_branch(business, branch.id if branch else None)
        parts = [
            (branch.address if branch else None) or knowledge.address,
            (branch.directions if branch else None) or knowledge.directions,
            (branch.parking if branch else None) or knowledge.parking,
            week_hours(calendar.hours),
        ]
        lines.append(
            f"- {branch.title if branch else business.name}: " + "; ".join(p or "unknown" for p in parts)
        )
    for name, label in (
        ("payment", "Payment"),
        ("what_to_bring", "What to bring"),
        ("cancellation", "Cancellation"),
    ):
        lines.append(f"{label}: {getattr(knowledge, name) or 'unknown'}")
    if knowledge.qa:
        lines.append("The owner's answers:")
        for qa in knowledge.qa:
            lines.append(f"- Q: {' / '.join(qa.questions)} A: {qa.answer}")
    return "\n".join(lines)


def _numbers(text: str) -> set[str]:
    found = set()
    for number in NUMBER_RE.findall(text):
        tidy = re.sub(r"[ \u00a0\u202f]", "", number).replace(",", ".")
        found.add(tidy.lstrip("0") or "0")
    return found


def is_grounded(answer: str, facts: str, client_text: str = "") -> bool:
    """An LLM's answer says no number and makes no promise that the facts (or the client) did not:
    a price, a time or a discount it made up sends the question to a human instead."""
    allowed = _numbers(facts) | _numbers(client_text)
    undated = DATE_RE.sub(" ", answer)  # «в воскресенье, 15 марта»: a day of the calendar, no fact
    if not _numbers(undated) <= allowed:
        return False
    return all(re.search(promise, facts, re.IGNORECASE) for promise in PROMISE_WORDS.findall(answer))


def describe_services(services: Sequence[Service], language: str = "ru") -> str:
    """«Маникюр + Педикюр (3 000 ₽, 2 часа 15 минут)» for a card."""
    names = " + ".join(service_name(s, language) for s in services)
    total = service_facts(services, language)
    return f"{names} ({total})" if total else names
