"""The score step: understand each client message, keep the lead's state, answer at once, and
hand the lead to route when it is ready (complete, hot, or waited long enough).

Safe to run twice for one message: the lead id derives from the first message, every write is
conditional, the reply is an exactly-once outbound message keyed by the inbound message.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from leadflow import clock
from leadflow.adapters.notify import client_channel, to_client, to_owner
from leadflow.adapters.outbound import Outbound
from leadflow.adapters.store import Store
from leadflow.adapters.store.timers import Timer
from leadflow.business import BusinessConfig
from leadflow.clock import iso
from leadflow.domain.branches import branch_for
from leadflow.domain.calendar import Calendar
from leadflow.domain.models import (
    CLOSED_STATUSES,
    Contact,
    InboundMessage,
    Intent,
    Lead,
    LeadReady,
    LeadStatus,
    OutboundMessage,
    Qualification,
    StaffEvent,
    Temperature,
)
from leadflow.domain.replies import compose_reply, missing_fields
from leadflow.observability import logger, metrics

Qualify = Callable[[InboundMessage, BusinessConfig], Qualification]
YES = re.compile(r"^\s*(да|подтверждаю|подтверждаем|буду|придем|придём|ок|ok|yes|\+)\b", re.I)
NO = re.compile(r"^\s*(нет|отмена|отменить|отмените|не смогу|не приду|no)\b", re.I)
MOVE = re.compile(r"перенес|перенос|другое время|другой день", re.I)
LLM_REFINE_WAIT_S = 10.0


def lead_id_for(message_id: str) -> str:
    return "L" + hashlib.sha256(message_id.encode()).hexdigest()[:12]


def offline_qualify(message: InboundMessage, business: BusinessConfig) -> Qualification:
    from leadflow.domain.qualify.offline import qualify_offline

    return qualify_offline(
        message.text, message.received_at, business.services, tz=business.tz, channel=message.channel
    )


class LlmWithFallback:
    """The LLM within a time budget; slower → the offline answer now and the LLM's refinement later."""

    def __init__(self, llm, budget_s: float):
        self.llm = llm
        self.budget_s = budget_s
        self.pool = ThreadPoolExecutor(max_workers=4)
        self.pending: dict[str, object] = {}

    def __call__(self, message: InboundMessage, business: BusinessConfig) -> Qualification:
        from leadflow.adapters.llm import LlmUnavailable

        future = self.pool.submit(self.llm.qualify, message.text, message.received_at, message.channel)
        try:
            return future.result(timeout=self.budget_s)
        except FutureTimeout:
            self.pending[message.message_id] = future
            metrics.add_metric(name="LlmOverBudget", unit="Count", value=1)
        except LlmUnavailable as exc:
            logger.info("llm unavailable, offline answer", extra={"reason": str(exc)})
            metrics.add_metric(name="LlmFallbacks", unit="Count", value=1)
        return offline_qualify(message, business)

    def late_answer(self, message_id: str) -> Qualification | None:
        future = self.pending.pop(message_id, None)
        if future is None:
            return None
        try:
            return future.result(timeout=LLM_REFINE_WAIT_S)  # type: ignore[attr-defined]
        except Exception:
            return None


class Conversation:
    def __init__(
        self,
        store: Store,
        outbound: Outbound,
        route_queue,
        business: BusinessConfig,
        qualify: Qualify = offline_qualify,
    ):
        self.store = store
        self.outbound = outbound
        self.route_queue = route_queue
        self.business = business
        self.qualify = qualify

    def handle(self, message: InboundMessage) -> None:
        if self.store.inbox.is_done(message.message_id):
            return  # a redelivery of a message handled before
        if message.channel == "telegram" and self.store.staff.staff_for_chat(message.chat_id):
            self.route_queue.send(
                StaffEvent(
                    event_id=message.message_id,
                    chat_id=message.chat_id,
                    user_id=message.contact.channel_user_id or "",
                    action="message",
                    text=message.text,
                    received_at=message.received_at,
                )
            )
            self.store.inbox.mark_done(message.message_id)
            return
        if message.channel == "sms" and _is_sms_opt_out(message.text):
            self._opt_out(message)
            return
        started = clock.now()
        understood = (
            self.qualify(message, self.business) if (message.text or "").strip() else _media_only(message)
        )
        lead, is_first = self._lead_for(message, understood)
        self.store.conversation.add_inbound(lead.lead_id, message)
        branch = branch_for(self.business, message)
        lead = (
            self.store.leads.mutate(
                lead.lead_id, lambda current: merge(current, message, understood, self.business.tz, branch)
            )
            or lead
        )

        answered_reminder = lead.status in (
            LeadStatus.booked,
            LeadStatus.confirmed,
        ) and self._answer_to_reminder(lead, message)
        if lead.handed_over:
            self._forward_to_owner(lead, message)  # the owner sees it, a «да» to a reminder included
        elif not answered_reminder:
            self._reply(lead, message, first=is_first)

        if isinstance(self.qualify, LlmWithFallback):
            refined = self.qualify.late_answer(message.message_id)
            if refined is not None:
                lead = (
                    self.store.leads.mutate(
                        lead.lead_id,
                        lambda current: merge(current, message, refined, self.business.tz, branch),
                    )
                    or lead
                )
        self._hand_on(lead, message)
        self.store.inbox.mark_done(message.message_id)
        metrics.add_metric(name="ScoreSeconds", unit="Seconds", value=(clock.now() - started).total_seconds())

    def _opt_out(self, message: InboundMessage) -> None:
        """«СТОП»: this number is never texted again; no reply (that would be a text)."""
        identities = [f"phone#{message.contact.phone or message.chat_id}"]
        contact_id, _ = self.store.contacts.resolve(identities)
        self.store.contacts.update(
            contact_id, sms_opt_out=True, sms_opt_out_at=message.received_at.isoformat()
        )
        metrics.add_metric(name="SmsOptOuts", unit="Count", value=1)
        self.store.inbox.mark_done(message.message_id)

    # ------------------------------------------------------------------ the lead
    def _lead_for(self, message: InboundMessage, understood: Qualification) -> tuple[Lead, bool]:
        """The contact's open lead if it is recent, else a new one named after this message."""
        phone = message.contact.phone or understood.phone
        identities = [f"{message.channel}#{message.contact.channel_user_id or message.chat_id}"]
        if phone:
            identities.append(f"phone#{phone}")
        contact_id, _ = self.store.contacts.resolve(identities)
        contact = self.store.contacts.get(contact_id)
        own_id = lead_id_for(message.message_id)
        window = timedelta(days=self.business.open_lead_window_days)
        for _ in range(3):
            open_id = contact.get("open_lead_id") or None
            if open_id and open_id != own_id:
                existing = self.store.leads.get(open_id)
                if existing and existing.is_open and message.received_at - existing.last_message_at <= window:
                    return existing, False
            if open_id == own_id or self.store.contacts.open_lead(contact_id, own_id, replacing=open_id):
                lead = Lead(
                    lead_id=own_id,
                    channel=message.channel,
                    chat_id=message.chat_id,
                    contact_id=contact_id,
                    contact=Contact(channel_user_id=message.contact.channel_user_id),
                    received_at=message.received_at,
                    last_message_at=message.received_at,
                    business_connection_id=message.business_connection_id,
                    branch=_known(self.business, contact.get("last_branch")),  # until the client says
                )
                created = self.store.leads.create(lead)
                if created:
                    metrics.add_metric(name="LeadsCreated", unit="Count", value=1)
                    metrics.add_metric(name=f"Leads_{message.channel}", unit="Count", value=1)
                return (lead if created else self.store.leads.get(own_id) or lead), created
            contact = self.store.contacts.get(contact_id)  # a concurrent message opened a lead first
        raise RuntimeError("could not settle the contact's open lead")

    # ------------------------------------------------------------------ answers
    def _reply(self, lead: Lead, message: InboundMessage, *, first: bool) -> None:
        now = clock.now()
        local_today = message.received_at.astimezone(self.business.tz).date()
        if message.call and message.call.missed and not message.text:
            text: str | None = self.business.messages.missed_call
        else:
            is_open = Calendar.for_branch(self.business, lead.branch).is_open(now)
            text = compose_reply(lead, self.business, first=first, today=local_today, is_open_now=is_open)
        if not text:
            return
        if client_channel(lead)[0] == "sms" and not lead.contact.phone:
            return  # a form that left only an e-mail: the owner calls back
        delivery = to_client(self.outbound, lead, f"reply:{message.message_id}", "reply", text)
        if delivery.outcome == "sent" and lead.first_reply_at is None:
            replied_at = clock.now()
            self.store.leads.mutate(lead.lead_id, lambda current: _first_reply(current, replied_at))
            metrics.add_metric(
                name="FirstResponseSeconds",
                unit="Seconds",
                value=max((replied_at - lead.received_at).total_seconds(), 0),
            )

    def _forward_to_owner(self, lead: Lead, message: InboundMessage) -> None:
        """After hand-over the assistant is quiet; the owner sees the client's words under the card."""
        from leadflow.adapters.notify import staff_chat

        if not lead.owner:
            return
        # Under the card, in the card's chat; without a card, in the owner's chat.
        chat, card_message = lead.card_ref() or (staff_chat(self.store, self.business, lead.owner), None)
        delivery = self.outbound.send(
            OutboundMessage(
                id=f"forward:{message.message_id}",
                channel="telegram",
                to=chat,
                lead_id=lead.lead_id,
                kind="client_message",
                text=f"💬 {lead.contact.name or 'Клиент'}: {message.text or '[' + ', '.join(message.media) + ']'}",
                reply_to_message_id=card_message,
            )
        )
        if delivery.provider_message_id:
            # A reply to the forwarded message reaches the client like a reply to the card.
            self.store.staff.remember_card(chat, delivery.provider_message_id, lead.lead_id)

    def _answer_to_reminder(self, lead: Lead, message: InboundMessage) -> bool:
        """«да» confirms a booked visit, «нет»/«отмена» cancels, «перенести» asks for a new time."""
        text = message.text or ""
        texts = self.business.messages
        if MOVE.search(text):  # first: «да, но можно перенести?» is a request to move
            status, answer = LeadStatus.booked, texts.reschedule
        elif YES.search(text):
            status, answer = LeadStatus.confirmed, texts.confirmed
        elif NO.search(text):
            status, answer = LeadStatus.cancelled, texts.cancelled
        else:
            return False
        updated = self.store.leads.mutate(lead.lead_id, lambda current: _set_status(current, status))
        if status == LeadStatus.cancelled:
            self.store.contacts.close_lead(lead.contact_id, lead.lead_id)
            if lead.owner:
                self.store.staff.release_lead(lead.owner)

        to_client(self.outbound, lead, f"reply:{message.message_id}", "reply", answer)
        verdict = {
            "confirmed": "подтвердил визит ✅",
            "cancelled": "отменил визит ❌",
            "booked": "просит перенести визит 🔁",
        }
        note = f"{lead.contact.name or 'Клиент'} {verdict[str(status)]} ({lead.lead_id})"
        to_owner(self.outbound, self.store, self.business, lead, f"owner_note:{message.message_id}", note)
        return updated is not None

    # ------------------------------------------------------------------ hand-on to route
    def _hand_on(self, lead: Lead, message: InboundMessage) -> None:
        if lead.routed or lead.status in CLOSED_STATUSES:
            return
        if lead.intent == Intent.not_target:
            self.route_queue.send(LeadReady(lead_id=lead.lead_id, reason="not_target"))
            return
        complete = not missing_fields(lead, self.business) or lead.intent == Intent.question
        hot = lead.temperature == Temperature.hot or bool(message.call and message.call.missed)
        if complete or hot:
            self.route_queue.send(
                LeadReady(lead_id=lead.lead_id, reason="hot" if hot and not complete else "complete")
            )
            return
        due = lead.received_at + timedelta(minutes=self.business.qualify.route_after_min)
        self.store.timers.put(
            Timer(
                f"route_wait#{lead.lead_id}",
                "escalate",
                "route_wait",
                iso(max(due, clock.now())),
                lead.lead_id,
            ),
            only_if_new=True,
        )
        from leadflow.steps.remind import schedule_nudges

        schedule_nudges(self.store, self.business, lead)


def _known(business: BusinessConfig, branch_id: str | None) -> str | None:
    return branch_id if len(business.branches) > 1 and business.branch(branch_id) else None


def _is_sms_opt_out(text: str) -> bool:
    from leadflow.adapters.channels.sms import is_opt_out

    return is_opt_out(text or "")


def _media_only(message: InboundMessage) -> Qualification:
    missed = bool(message.call and message.call.missed)
    return Qualification(
        intent=Intent.booking,
        temperature=Temperature.hot if missed else Temperature.warm,
        urgent=missed,
        engine="none",
    )


def merge(
    lead: Lead, message: InboundMessage, understood: Qualification, tz: ZoneInfo, branch: str | None = None
) -> Lead | None:
    """Fold one message's understanding into the lead: new facts fill or refine, none are lost.
    A late-arriving older message only fills gaps; a routed lead keeps its branch."""
    newer = message.received_at >= lead.last_message_at
    if branch and not lead.routed and (newer or lead.branch is None):
        lead.branch = branch
    if understood.intent == Intent.booking or lead.intent is None:
        lead.intent = understood.intent
    elif understood.intent == Intent.question and lead.intent == Intent.not_target:
        lead.intent = Intent.question
    for field in ("service", "preferred_date", "preferred_time"):
        value = getattr(understood, field)
        if value is not None and (newer or getattr(lead, field) is None):
            setattr(lead, field, value)
    lead.urgent = lead.urgent or understood.urgent
    lead.llm_tokens += understood.tokens
    if message.call and message.call.missed:
        lead.tags = sorted({*lead.tags, "missed_call"})
    lead.temperature = temperature_of(lead, message.received_at.astimezone(tz).date())
    name = message.contact.name if message.channel in ("form", "call") else None
    lead.contact.name = lead.contact.name or understood.name or name or message.contact.name
    lead.contact.phone = lead.contact.phone or message.contact.phone or understood.phone
    lead.contact.channel_user_id = lead.contact.channel_user_id or message.contact.channel_user_id
    lead.media = sorted(set(lead.media) | set(message.media))
    lead.source = lead.source or message.source or message.utm.source or message.channel
    if lead.utm.is_empty() and not message.utm.is_empty():
        lead.utm = message.utm
    lead.promo = lead.promo or message.promo
    if newer:
        lead.last_message_at = message.received_at
    if lead.status == LeadStatus.new:
        lead.status = LeadStatus.qualifying
    return lead


def temperature_of(lead: Lead, today: date) -> Temperature:
    """hot = a booking for today..+2 days or stated urgency; warm = other bookings; cold = the rest."""
    if lead.intent != Intent.booking:
        return Temperature.cold
    soon = lead.preferred_date is not None and 0 <= (lead.preferred_date - today).days <= 2
    return Temperature.hot if lead.urgent or soon or "missed_call" in lead.tags else Temperature.warm


def _first_reply(lead: Lead, at: datetime) -> Lead | None:
    if lead.first_reply_at:
        return None
    lead.first_reply_at = at
    return lead


def _set_status(lead: Lead, status: LeadStatus) -> Lead | None:
    if lead.status == status:
        return None
    lead.status = status
    return lead
