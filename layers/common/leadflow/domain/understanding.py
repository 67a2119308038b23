"""Folding what one message said into the lead: new facts fill or refine, none are lost."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from leadflow.domain import lifecycle
from leadflow.domain.models import Attachment, InboundMessage, Intent, Lead, Qualification, Temperature
from leadflow.domain.qualify.names import is_placeholder_name
from leadflow.domain.qualify.text import language_of

# How many message ids a lead remembers to recognise a redelivered message (a redelivery comes
# within minutes; a lead gets a few dozen messages at most).
SEEN_MESSAGES = 50
RECENT_TIMES = 20  # enough to tell a flood (replies.per_chat) from a conversation
CARD_TEXTS, CARD_TEXT_CHARS = 3, 200  # the last messages a lead card shows
LEAD_ATTACHMENTS = 20  # the client's files a lead names (a few hundred bytes each on the item)


def merge(
    lead: Lead, message: InboundMessage, understood: Qualification, tz: ZoneInfo, branch: str | None = None,
    *, refined: bool = False,
) -> Lead | None:  # fmt: skip
    """Fold one message's understanding into the lead; None when this message was folded in before
    (a redelivery). ``refined``: a better understanding of a message folded in already (the LLM's
    late answer). A late-arriving older message only fills gaps; a routed lead keeps its branch."""
    if message.message_id in lead.message_ids and not refined:
        return None
    newer = message.received_at >= lead.last_message_at
    # A branch named is taken whenever the lead has none (also after routing: it was asked for);
    # a routed lead keeps the branch it was routed in.
    if branch and (lead.branch is None or (not lead.routed and newer)):
        lead.branch = branch
    if understood.intent == Intent.booking or lead.intent is None:
        lead.intent = understood.intent
    elif understood.intent == Intent.question and lead.intent == Intent.not_target:
        lead.intent = Intent.question
    for field in ("service", "services", "preferred_date", "preferred_time", "preferred_window", "master"):
        value = getattr(understood, field)
        if value not in (None, []) and (newer or getattr(lead, field) in (None, [])):
            setattr(lead, field, value)
    if lead.service and (not lead.services or lead.services[0] != lead.service):
        # a lead stored before `services` existed, or a late message that filled only the gap
        lead.services = [lead.service, *(s for s in lead.services if s != lead.service)]
    language = language_of(message.text) if newer else None
    if language:  # the language of the newest message with words in it
        lead.language = language  # type: ignore[assignment]
    lead.urgent = lead.urgent or understood.urgent
    lead.llm_tokens += understood.tokens if message.message_id not in lead.message_ids or refined else 0
    if message.call and message.call.missed:
        lead.tags = sorted({*lead.tags, "missed_call"})
    lead.temperature = temperature_of(lead, message.received_at.astimezone(tz).date())
    given = None if is_placeholder_name(message.contact.name) else message.contact.name
    name = given if message.channel in ("form", "call") else None
    lead.contact.name = lead.contact.name or understood.name or name or given
    lead.contact.phone = lead.contact.phone or message.contact.phone or understood.phone
    lead.contact.channel_user_id = lead.contact.channel_user_id or message.contact.channel_user_id
    lead.media = sorted(set(lead.media) | set(message.media))
    lead.builder = lead.builder or message.builder
    lead.source = lead.source or message.source or message.utm.source or message.channel
    if lead.utm.is_empty() and not message.utm.is_empty():
        lead.utm = message.utm
    lead.promo = lead.promo or message.promo
    if newer:
        lead.last_message_at = message.received_at
    if message.message_id not in lead.message_ids:
        lead.message_ids = [*lead.message_ids, message.message_id][-SEEN_MESSAGES:]
        lead.inbound_at = sorted([*lead.inbound_at, message.received_at])[-RECENT_TIMES:]
        shown = (
            f"🎤 {message.text}"
            if message.transcribed
            else message.text or "[" + ", ".join(message.media) + "]"
        )
        if newer:  # the card shows the newest three (an older message arriving late is not "newest")
            lead.recent_texts = [*lead.recent_texts, shown[:CARD_TEXT_CHARS]][-CARD_TEXTS:]
    return lifecycle.start_qualifying(lead)


def temperature_of(lead: Lead, today: date) -> Temperature:
    """hot = a booking for today..+2 days or stated urgency; warm = other bookings; cold = the rest."""
    if lead.intent != Intent.booking:
        return Temperature.cold
    soon = lead.preferred_date is not None and 0 <= (lead.preferred_date - today).days <= 2
    return Temperature.hot if lead.urgent or soon or "missed_call" in lead.tags else Temperature.warm


def with_attachments(lead: Lead | None, attachments: list[Attachment]) -> Lead | None:
    """The lead naming a message's files too (each once, the newest ``LEAD_ATTACHMENTS`` kept); a
    None lead (nothing to change: a redelivery) stays None."""
    if lead is None:
        return None
    known = {(a.message_id, a.n) for a in lead.attachments}
    new = [a for a in attachments if (a.message_id, a.n) not in known]
    if not new:
        return lead
    lead.attachments = [*lead.attachments, *new][-LEAD_ATTACHMENTS:]
    return lead
