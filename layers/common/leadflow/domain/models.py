"""Models that cross a boundary: queue messages between functions and the stored lead.

Queue messages carry ``schema_version`` so a consumer can refuse (and dead-letter) a
message it does not understand instead of misreading it.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class Channel(StrEnum):
    telegram = "telegram"
    whatsapp = "whatsapp"
    instagram = "instagram"
    vk = "vk"
    form = "form"
    call = "call"
    sms = "sms"


class Intent(StrEnum):
    booking = "booking"
    question = "question"
    not_target = "not_target"


class Temperature(StrEnum):
    hot = "hot"
    warm = "warm"
    cold = "cold"


class LeadStatus(StrEnum):
    new = "new"
    qualifying = "qualifying"
    assigned = "assigned"
    accepted = "accepted"
    booked = "booked"
    confirmed = "confirmed"
    visited = "visited"
    no_show = "no_show"
    cancelled = "cancelled"
    lost = "lost"
    not_target = "not_target"


CLOSED_STATUSES = frozenset(
    {LeadStatus.visited, LeadStatus.no_show, LeadStatus.cancelled, LeadStatus.lost, LeadStatus.not_target}
)


class Builder(StrEnum):
    """Chatbot builders whose subscribers post forms: answered in the builder's own chat."""

    manychat = "manychat"
    chatfuel = "chatfuel"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", use_enum_values=True)


class BuilderRef(_Model):
    """Where a builder's subscriber is reached: the builder, its subscriber id, and for ManyChat the
    messenger the subscriber writes from (its sendContent needs it; none means Facebook Messenger)."""

    name: Builder
    user_id: str
    channel: str | None = None

    def address(self) -> str:
        return f"{self.channel}:{self.user_id}" if self.channel else self.user_id


class Utm(_Model):
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    content: str | None = None
    term: str | None = None

    def is_empty(self) -> bool:
        return not any(self.model_dump().values())


class Contact(_Model):
    name: str | None = None
    phone: str | None = Field(default=None, description="E.164")
    channel_user_id: str | None = Field(default=None, description="the sender's id in its channel")
    phone_verified: bool = Field(
        default=False,
        description="the channel vouches the sender owns the phone: WhatsApp's wa_id, a caller id, an "
        "SMS sender, a Telegram contact shared by its owner; a phone typed anywhere is only a claim",
    )


class CallInfo(_Model):
    direction: Literal["in", "out"] = "in"
    missed: bool = False
    called_number: str | None = None
    duration_s: int | None = None
    recording_url: str | None = None


class MediaRef(_Model):
    """A file a client sent, as the platform names it — never its bytes: ingest answers at once and
    queue messages stay small (SQS takes 256 KB); score fetches the file with the channel's token."""

    kind: str = Field(description="photo, voice, audio, video, video_note, document, sticker")
    file_id: str | None = Field(default=None, description="Telegram's file_id, WhatsApp's media id")
    url: str | None = Field(default=None, description="a direct link (Instagram CDN, VK)")
    mime_type: str | None = None
    size: int | None = Field(default=None, description="bytes, when the platform says")
    file_name: str | None = None
    caption: str | None = None
    copy_from: str | None = Field(
        default=None,
        description="Telegram: '<chat id>:<message id>' of the client's message — the bot copies it to "
        "staff without downloading it",
    )
    link: str | None = Field(default=None, description="where staff can see it when it cannot be fetched")


class Attachment(_Model):
    """A client's file as the lead keeps it for its owner: in the media bucket (``stored``), copied
    in Telegram (``copy_from``), or a note saying why staff must look in the client's messenger."""

    message_id: str
    n: int = Field(description="its place among the message's files")
    kind: str
    ext: str = "bin"
    mime_type: str | None = None
    size: int | None = None
    file_name: str | None = None
    caption: str | None = None
    copy_from: str | None = None
    stored: bool = Field(default=False, description="its bytes are in the media bucket under key()")
    problem: Literal["too_big", "unsupported", "unavailable"] | None = None
    link: str | None = None
    transcript: str | None = Field(default=None, description="a voice message's words")

    def key(self, lead_id: str) -> str:
        """``media/<lead id>/<message id>/<n>.<ext>``: a lead's files share one prefix (forget, expiry)."""
        return f"{media_prefix(lead_id)}{_key_part(self.message_id)}/{self.n}.{self.ext}"


def media_prefix(lead_id: str) -> str:
    return f"media/{_key_part(lead_id)}/"


def _key_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._:=-]", "_", text)[:200]


class InboundMessage(_Model):
    """One message from a client, whatever channel it came through (ingest → score)."""

    type: Literal["inbound"] = "inbound"
    schema_version: Literal[1] = 1
    message_id: str = Field(description="dedupe key: channel + the provider's id")
    channel: Channel
    chat_id: str = Field(description="where a reply goes: chat id, phone, user id")
    contact: Contact
    text: str = ""
    media: list[str] = Field(default_factory=list, description="voice, photo, video, location, …")
    attachments: list[MediaRef] = Field(default_factory=list, description="the files among ``media``")
    transcribed: bool = Field(default=False, description="``text`` holds a voice message's words")
    builder: BuilderRef | None = Field(
        default=None, description="the chatbot builder (ManyChat, Chatfuel) that posted a form"
    )
    received_at: AwareDatetime
    source: str | None = None
    utm: Utm = Field(default_factory=Utm)
    promo: str | None = None
    page_url: str | None = None
    call: CallInfo | None = None
    business_connection_id: str | None = Field(
        default=None, description="Telegram Business: reply as the business account"
    )
    recipient: str | None = Field(
        default=None,
        description="what the client reached: our number (E.164), 'vk:<group>', 'instagram:<id>'",
    )
    branch: str | None = Field(default=None, description="as the sender named it: ?branch= or a form field")
    raw_ref: str | None = Field(default=None, description="key of the stored raw payload")


class StaffEvent(_Model):
    """Something a staff member did in Telegram: a button press, a reply to a card, a command."""

    type: Literal["staff"] = "staff"
    schema_version: Literal[1] = 1
    event_id: str
    chat_id: str
    user_id: str
    action: str = Field(description="callback data, command or 'reply'")
    text: str = ""
    reply_to_message_id: str | None = None
    reply_to_text: str | None = Field(default=None, description="the first line of the message replied to")
    callback_query_id: str | None = None
    received_at: AwareDatetime


class CrmEvent(_Model):
    """A status change reported back by the CRM (a Bitrix24 outbound webhook, an amoCRM webhook)."""

    type: Literal["crm"] = "crm"
    schema_version: Literal[1] = 1
    event_id: str
    event: str
    entity: Literal["lead", "deal", "contact", "activity", "record", "payment"] = (
        "lead"  # record: YCLIENTS; payment: ЮKassa
    )
    crm_id: str
    received_at: AwareDatetime


class DeliveryReport(_Model):
    """A provider's delivery report for a message we sent (SMS status callbacks)."""

    type: Literal["delivery"] = "delivery"
    schema_version: Literal[1] = 1
    event_id: str
    channel: Channel = Channel.sms
    provider_message_id: str
    status: Literal["delivered", "failed", "pending"]
    error: str | None = None
    received_at: AwareDatetime


class LeadReady(_Model):
    """A qualified lead that route should give an owner (score → route)."""

    type: Literal["lead_ready"] = "lead_ready"
    schema_version: Literal[1] = 1
    lead_id: str
    # After routing, route brings the CRM record and the card up to date: booked — the assistant
    # booked the lead; updated — the client gave details the card shows (a phone, a time).
    reason: Literal["complete", "hot", "waited", "not_target", "booked", "updated"] = "complete"
    # The client as score last wrote them: route chooses the owner without reading the contact.
    contact: ContactRecord | None = None


QueueMessage = Annotated[
    InboundMessage | StaffEvent | CrmEvent | DeliveryReport | LeadReady, Field(discriminator="type")
]


# A part of the day or a bound the client gives (LABELING.md, second edition).
WINDOW_PATTERN = r"^(morning|afternoon|evening|(after|before) ([01]\d|2[0-3]):[0-5]\d)$"


class OfferedSlot(_Model):
    """A free slot the assistant offered the client (kept on the lead until they pick one)."""

    start: AwareDatetime
    master: str = Field(description="staff id")
    duration_min: int
    ref: str | None = Field(default=None, description="the booking system's own handle (YCLIENTS datetime)")
    service: str | None = None


class Qualification(_Model):
    """What the qualifier understood from one message (offline or LLM)."""

    intent: Intent = Intent.booking
    temperature: Temperature = Temperature.warm
    service: str | None = None
    services: list[str] = Field(
        default_factory=list, description="every catalog id wanted, in order; the first is `service`"
    )
    preferred_date: date | None = None
    preferred_time: str | None = Field(default=None, pattern=r"^\d{2}:\d{2}$")
    preferred_window: str | None = Field(default=None, pattern=WINDOW_PATTERN)
    name: str | None = None
    phone: str | None = None
    master: str | None = Field(default=None, description="a master the client named («к Оле»): staff id")
    urgent: bool = False
    engine: str = "offline"
    tokens: int = 0
    answer: str | None = Field(
        default=None, description="the LLM's answer to the client's question, from the business's facts only"
    )

    @model_validator(mode="after")
    def _service_leads_services(self) -> Qualification:
        # `service` is the first of `services`, and the list is empty exactly when there is no service
        if self.service is None:
            self.services = []
        elif not self.services or self.services[0] != self.service:
            self.services = [self.service, *(s for s in self.services if s != self.service)]
        return self


class Lead(_Model):
    lead_id: str
    status: LeadStatus = LeadStatus.new
    channel: Channel
    chat_id: str
    contact_id: str
    contact: Contact = Field(default_factory=Contact)
    intent: Intent | None = None
    temperature: Temperature | None = None
    service: str | None = None
    services: list[str] = Field(default_factory=list)
    preferred_date: date | None = None
    preferred_time: str | None = None
    preferred_window: str | None = None
    master: str | None = Field(default=None, description="a master the client named («к Оле»): staff id")
    offered: list[OfferedSlot] = Field(default_factory=list, description="slots offered, not yet picked")
    booked_master: str | None = Field(default=None, description="who the visit is booked with")
    booking_ref: str | None = Field(default=None, description="the booking's id in the booking system")
    calendar_token: str | None = Field(
        default=None,
        description="the booking's «добавить в календарь» link: /ics/<token>.ics (kept on a move)",
    )
    booked_in_crm: bool = Field(
        default=False, description="the visit's time came from the CRM's booking field (clearing it cancels)"
    )
    paid_at: datetime | None = Field(default=None, description="when the prepayment was confirmed")
    payment_id: str | None = Field(default=None, description="the prepayment's id at the payment provider")
    paid_amount: str | None = Field(
        default=None, description="what was paid, as the provider says: «4500.00 RUB»"
    )
    calendar_sequence: int = Field(
        default=0, description="the .ics event's SEQUENCE (RFC 5545): bumped on each move of the visit"
    )
    language: Literal["ru", "en"] = Field(default="ru", description="the language the client writes in")
    question: str | None = Field(
        default=None, description="a question the assistant could not answer: a person answers it"
    )
    urgent: bool = False
    media: list[str] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list, description="the client's files, newest last")
    builder: BuilderRef | None = None
    llm_tokens: int = 0
    branch: str | None = None
    owner: str | None = None
    assignment_reason: str | None = None
    crm_id: str | None = None
    crm_entity: Literal["lead", "deal", "row"] | None = None  # row: a line of a Google sheet
    crm_error: str | None = Field(default=None, description="the CRM refused the lead for good: why")
    mirrored: bool = Field(default=False, description="also written to the business's crm.mirror_sheet")
    source: str | None = None
    utm: Utm = Field(default_factory=Utm)
    promo: str | None = None
    tags: list[str] = Field(default_factory=list)
    priority: Literal["normal", "high"] = "normal"
    handed_over: bool = Field(default=False, description="a human answers; the assistant is quiet")
    received_at: datetime
    last_message_at: datetime
    first_reply_at: datetime | None = None
    assigned_at: datetime | None = None
    accepted_at: datetime | None = None
    appointment_at: datetime | None = None
    callback_at: datetime | None = Field(default=None, description="off-hours lead: call back at opening")
    business_connection_id: str | None = None
    card: str | None = Field(default=None, description="the owner's lead card: '<chat id>:<message id>'")
    card_shows: str | None = Field(
        default=None,
        description="``card_details_key`` of what the card and the CRM record show of the client",
    )
    routed: bool = False
    previous_owner: str | None = Field(
        default=None, description="who owned the client's lead before this one"
    )
    message_ids: list[str] = Field(default_factory=list, description="the last messages folded in")
    inbound_at: list[datetime] = Field(default_factory=list, description="when the last messages came")
    recent_texts: list[str] = Field(default_factory=list, description="the last messages, for the card")
    possible_match: str | None = Field(
        default=None,
        description="a contact whose verified phone the client typed: staff decide if it is them",
    )
    version: int = 0

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    def client_address(self) -> tuple[str, str]:
        """(channel, recipient) of a message to the client: its own channel, the chatbot builder a form
        came from, or SMS for calls and forms."""
        if self.channel == "form" and self.builder is not None:
            return self.builder.name, self.builder.address()
        if self.channel in ("call", "form"):
            return "sms", self.contact.phone or self.chat_id
        return self.channel, self.chat_id

    def card_ref(self) -> tuple[str, str] | None:
        """(chat, message id) of the lead's card; the chat may hold a colon (``staff:anna`` in the outbox)."""
        if not self.card or ":" not in self.card:
            return None
        chat, _, message_id = self.card.rpartition(":")
        return chat, message_id

    def public_view(self) -> dict:
        """The shape `leadflow leads --json` prints (a stable interface)."""
        keys = [
            "lead_id",
            "status",
            "channel",
            "contact",
            "intent",
            "temperature",
            "service",
            "preferred_date",
            "preferred_time",
            "services",
            "preferred_window",
            "branch",
            "master",
            "language",
            "owner",
            "crm_id",
            "source",
            "utm",
            "promo",
            "received_at",
            "first_reply_at",
            "accepted_at",
            "appointment_at",
        ]
        data = self.model_dump(mode="json")
        return {k: data.get(k) for k in keys}


class ContactRecord(_Model):
    """A person as the contacts table keeps them, across channels and leads."""

    contact_id: str
    leads: int = 0
    visits: int = 0
    open_lead_id: str | None = None
    last_lead_id: str | None = None
    last_owner: str | None = Field(
        default=None, description="written by earlier versions; now the last lead's"
    )
    last_branch: str | None = None
    vip: bool = False
    sms_opt_out: bool = False
    sms_opt_out_at: str | None = None
    marketing_consent: bool = False
    recent_openings: list[datetime] = Field(
        default_factory=list, description="when its last leads were opened"
    )
    lead_ids: set[str] = Field(default_factory=set, description="every lead of this person")
    identities: set[str] = Field(default_factory=set, description="'telegram#123', 'phone#+7…': who they are")

    @property
    def is_repeat_client(self) -> bool:
        return self.leads > 1 or bool(self.last_owner)


class StaffState(_Model):
    """What changes about a staff member while they work (the config says who they are)."""

    staff_id: str
    open_leads: int = 0
    telegram_chat_id: str | None = None
    off_until: datetime | None = None

    def is_off(self, at: datetime) -> bool:
        return self.off_until is not None and self.off_until > at


class OutboundMessage(_Model):
    """A message leadflow sends: to a client or to staff."""

    id: str = Field(description="idempotency key: the same id is never sent twice")
    channel: Channel | Builder
    to: str
    lead_id: str | None = None
    kind: str = Field(description="reply, lead_card, sla_reminder, escalation, reminder, nudge, digest, …")
    text: str
    buttons: list[list[dict]] = Field(default_factory=list, description="Telegram inline keyboard rows")
    business_connection_id: str | None = None
    reply_to_message_id: str | None = None
    link_preview: bool = Field(default=True, description="False: Telegram shows no preview (login links)")
    attachment: Attachment | None = Field(
        default=None, description="a client's file forwarded to staff; ``text`` is its caption or note"
    )


LeadReady.model_rebuild()  # it carries a ContactRecord, defined below it
