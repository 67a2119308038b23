"""score: understand each client message, keep the lead's state, answer at once, and hand the
lead to route when it is ready (complete, hot, or waited long enough).

Safe to run twice for one message: the lead id derives from the first message, the lead
remembers the messages folded into it, every write is conditional, and the reply is an
exactly-once outbound message keyed by the inbound message. Routing never waits on the reply:
a reply that fails is retried by the queue after the lead was handed on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from leadflow import clock, failpoints
from leadflow.adapters.booking import BookingSystem, BookingUnavailable
from leadflow.adapters.messenger import Messenger
from leadflow.adapters.queues import Queue
from leadflow.adapters.sqs_batch import BatchFrame, Poison
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.clock import iso
from leadflow.domain import lifecycle
from leadflow.domain.branches import branch_for
from leadflow.domain.calendar import Calendar
from leadflow.domain.cards import card_details_key
from leadflow.domain.models import (
    CLOSED_STATUSES,
    Attachment,
    Contact,
    ContactRecord,
    InboundMessage,
    Intent,
    Lead,
    LeadReady,
    OutboundMessage,
    Qualification,
    Temperature,
)
from leadflow.domain.plans import Timer, emoji_wait_timer
from leadflow.domain.qualify.text import is_emoji_only
from leadflow.domain.replies import build_reply, missing_fields, reminder_answer
from leadflow.domain.schedule import named_master
from leadflow.domain.sms import is_opt_out
from leadflow.domain.understanding import CARD_TEXT_CHARS, merge, with_attachments
from leadflow.observability import logger, metrics
from leadflow.steps.booking import Bookings
from leadflow.steps.leads import LeadChanges
from leadflow.steps.media import ClientMedia, Collected, NoTimeLeft, forward_attachments, with_transcript

RECENT_OPENINGS = 20  # enough to tell a flood (replies.per_chat) from a conversation
# Time kept back from the batch's deadline for the writes and sends that follow an LLM answer.
RESERVE_S = 5.0


class Qualifier(Protocol):
    def __call__(
        self, message: InboundMessage, business: BusinessConfig, time_left_s: float | None = None
    ) -> Qualification: ...


def lead_id_for(message_id: str) -> str:
    return "L" + hashlib.sha256(message_id.encode()).hexdigest()[:12]


def offline_qualify(
    message: InboundMessage, business: BusinessConfig, time_left_s: float | None = None
) -> Qualification:
    from leadflow.domain.qualify.offline import qualify_offline

    return qualify_offline(
        message.text, message.received_at, business.services, tz=business.tz, channel=message.channel
    )


class ScoreStep:
    def __init__(
        self,
        store: Store,
        messenger: Messenger,
        route_queue: Queue,
        business: BusinessConfig,
        qualify: Qualifier,
        frame: BatchFrame,
        media: ClientMedia | None = None,
        booking: BookingSystem | None = None,
        public_base_url: str | None = None,
    ):
        self.store = store
        self.messenger = messenger
        self.route_queue = route_queue
        self.business = business
        self.qualify = qualify
        self.frame = frame
        self.media = media
        self.leads = LeadChanges(store, business)
        self.bookings = Bookings(store, messenger, business, booking, public_base_url)
        self.time_left_s: Callable[[], float] = lambda: float("inf")

    def handle_event(self, event: dict, context: Any) -> dict:
        """One SQS batch; the LLM's waits share the invocation's time, not a fixed time per message."""
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            self.time_left_s = lambda: context.get_remaining_time_in_millis() / 1000 - RESERVE_S
        self.messenger.until_deadline(context)
        return self.frame.process(event, context, self._record)

    def _record(self, message: Any, record: Any) -> None:
        if not isinstance(message, InboundMessage):
            raise Poison(f"score takes inbound messages, got {message.type!r}")
        self.handle(message)

    def handle(self, message: InboundMessage) -> None:
        if message.channel == "sms" and is_opt_out(message.text or ""):
            self._opt_out(message)
            return
        started = clock.now()
        collected = self._collect(message)
        if collected.transcript:
            message = with_transcript(message, collected.transcript)
        words = (message.text or "").strip()
        understood = (
            self.qualify(message, self.business, self.time_left_s())
            # «💅🔥» with a photo is «хочу такой», not an emoji-only message
            if words and not (message.media and is_emoji_only(words))
            else _media_only(message)
        )
        if understood.master is None and message.text:
            understood.master = named_master(message.text, self.business)
        branch = branch_for(self.business, message)
        lead, contact, is_first, unsaved = self._lead_for(message, understood, branch, collected.attachments)
        if self.media is not None and collected.blobs:
            self.media.keep(lead.lead_id, collected)  # before the lead is written, or right after its merge

        answered_reminder = (
            not unsaved and lead.status in lifecycle.BOOKED and self._answer_to_reminder(lead, message)
        )
        reply_error: Exception | None = None
        try:
            if lead.handed_over:
                self._forward_to_owner(lead, message)  # the owner sees it, a «да» to a reminder included
            elif not answered_reminder:
                lead = self._reply(
                    lead, message, first=is_first, unsaved=unsaved, understood=understood,
                    unheard_voice=collected.unheard_voice,
                )  # fmt: skip
        except Exception as exc:
            # Routing never waits on the reply: the lead is handed on, then the queue retries this
            # message and the reply (exactly once: the send is claimed by the message's id).
            reply_error = exc
            logger.warning(
                "reply failed, will retry", extra={"lead_id": lead.lead_id, "error": type(exc).__name__}
            )
        failpoints.hit("score.after_reply_sent")
        if unsaved:
            # A new lead is written once, its first reply's time included (a redelivery finds it).
            if self.store.leads.create(lead):
                metrics.add_metric(name="LeadsCreated", unit="Count", value=1)
                metrics.add_metric(name=f"Leads_{message.channel}", unit="Count", value=1)
            else:  # a redelivery: the lead was written before (maybe before its reply went out)
                replied_at = lead.first_reply_at
                lead = self.store.leads.get(lead.lead_id) or lead
                if replied_at and not lead.first_reply_at:
                    changed = self.store.leads.change(
                        lead.lead_id, lambda current: lifecycle.first_reply(current, replied_at), known=lead
                    )
                    lead = changed.lead if changed else lead
        self.store.conversation.add_inbound(lead.lead_id, message)
        if collected.attachments and (not unsaved or lead.card):  # a new lead's files follow its card (route)
            try:
                lead = self._forward_attachments(lead)
            except Exception as exc:  # like the reply: the lead is handed on, the queue retries the file
                reply_error = reply_error or exc
                logger.warning("forwarding a file failed, will retry", extra={"error": type(exc).__name__})

        refine = getattr(self.qualify, "late_answer", None)
        if refine is not None:
            refined = refine(message.message_id, self.time_left_s())
            if refined is not None:
                changed = self.store.leads.change(
                    lead.lead_id,
                    lambda current: merge(current, message, refined, self.business.tz, branch, refined=True),
                    known=lead,
                )
                lead = changed.lead if changed else lead
        failpoints.hit("score.before_hand_on")
        self._hand_on(lead, message, contact)
        metrics.add_metric(name="ScoreSeconds", unit="Seconds", value=(clock.now() - started).total_seconds())
        if reply_error is not None:
            raise reply_error

    def _collect(self, message: InboundMessage) -> Collected:
        if self.media is None or not (message.attachments or "unsupported" in message.media):
            return Collected()
        try:
            return self.media.collect(message, self.time_left_s)
        except NoTimeLeft:
            # Nothing of this message is written yet: the queue brings it back to a fresh batch.
            logger.info("message retried: its files need more time than the batch has left")
            raise

    def _forward_attachments(self, lead: Lead) -> Lead:
        """The files under the card when there is one. Read again when the lead had none: route
        may have sent the card since the files were named (then it forwarded those it found
        uploaded, and the claims keep each file to one message)."""
        current = lead if lead.card else (self.store.leads.get(lead.lead_id) or lead)
        forward_attachments(self.messenger, current)
        return current

    def _opt_out(self, message: InboundMessage) -> None:
        """«СТОП»: this number is never texted again; no reply (that would be a text)."""
        resolved = self.store.contacts.resolve([f"phone#{message.contact.phone or message.chat_id}"])
        self.store.contacts.update(
            resolved.contact.contact_id, sms_opt_out=True, sms_opt_out_at=message.received_at.isoformat()
        )
        metrics.add_metric(name="SmsOptOuts", unit="Count", value=1)

    # ------------------------------------------------------------------ the lead
    def _lead_for(
        self, message: InboundMessage, understood: Qualification, branch: str | None,
        attachments: list[Attachment] | None = None,
    ) -> tuple[Lead, ContactRecord, bool, bool]:  # fmt: skip
        """(lead, its contact, is it the lead's first message, is it still to be written): the contact's open
        lead if it is recent, else a new one named after this message — written after its reply.

        Only identities the channel vouches for join a contact: the sender's id in its channel
        and a verified phone. A phone typed in a message is a claim: it is kept on the lead for
        the call-back and shown to staff as a possible match, never merged."""
        identities = [f"{message.channel}#{message.contact.channel_user_id or message.chat_id}"]
        if message.contact.phone and message.contact.phone_verified:
            identities.append(f"phone#{message.contact.phone}")
        typed = None if message.contact.phone_verified else message.contact.phone
        claims = dict.fromkeys(f"phone#{phone}" for phone in (typed, understood.phone) if phone)
        peek = tuple(claim for claim in claims if claim not in identities)
        resolved = self.store.contacts.resolve(identities, peek=peek)
        contact = resolved.contact
        match = next((other for other in resolved.peeked.values() if other != contact.contact_id), None)
        own_id = lead_id_for(message.message_id)
        files = attachments or []
        window = timedelta(days=self.business.open_lead_window_days)
        tz = self.business.tz
        existing: Lead | None = None
        for _ in range(3):
            open_id = contact.open_lead_id
            if open_id and open_id != own_id:
                existing = self.store.leads.get(open_id)
                if existing and existing.is_open and message.received_at - existing.last_message_at <= window:
                    changed = self.store.leads.change(
                        existing.lead_id,
                        lambda current: _with_match(
                            with_attachments(merge(current, message, understood, tz, branch), files), match
                        ),
                        known=existing,
                    )
                    return (changed.lead if changed else existing), contact, False, False
            openings = sorted({*contact.recent_openings, message.received_at})[-RECENT_OPENINGS:]
            opened = open_id == own_id or self.store.contacts.open_lead(
                contact.contact_id, own_id, replacing=open_id, openings=openings, identities=identities
            )
            if opened:
                previous = self._previous_lead(contact, existing, own_id)  # as read: before this lead
                fresh = Lead(
                    lead_id=own_id,
                    channel=message.channel,
                    chat_id=message.chat_id,
                    contact_id=contact.contact_id,
                    contact=Contact(channel_user_id=message.contact.channel_user_id),
                    received_at=message.received_at,
                    last_message_at=message.received_at,
                    business_connection_id=message.business_connection_id,
                    # A returning client starts at her last branch, with her last owner in mind.
                    branch=_known(self.business, previous.branch if previous else contact.last_branch),
                    previous_owner=(previous.owner if previous else None) or contact.last_owner,
                )
                lead = _with_match(
                    with_attachments(merge(fresh, message, understood, tz, branch), files), match
                )
                lead = lead or fresh
                # A chat that keeps opening leads (a flood of nonsense closes each one) counts as one chat.
                lead.inbound_at = sorted({*lead.inbound_at, *openings})[-RECENT_OPENINGS:]
                return lead, (contact if opened is True else opened), True, True
            contact = self.store.contacts.get(contact.contact_id)  # a concurrent message opened a lead first
        raise RuntimeError("could not settle the contact's open lead")

    def _previous_lead(self, contact: ContactRecord, seen: Lead | None, own_id: str) -> Lead | None:
        """The contact's lead before this one (one read, only for a returning client)."""
        previous_id = contact.last_lead_id if contact.last_lead_id != own_id else None
        if seen is not None and seen.lead_id == previous_id:
            return seen
        return self.store.leads.get(previous_id) if previous_id else None

    # ------------------------------------------------------------------ answers
    def _reply(
        self, lead: Lead, message: InboundMessage, *, first: bool, unsaved: bool = False,
        understood: Qualification | None = None, unheard_voice: bool = False,
    ) -> Lead:  # fmt: skip
        now = clock.now()
        # «завтра» is the day after the message was written, however late it is processed
        local_today = message.received_at.astimezone(self.business.tz).date()
        if message.call and message.call.missed and not message.text:
            text: str | None = self.business.messages.missed_call
        else:
            is_open = Calendar.for_branch(self.business, lead.branch).is_open(now)
            lead, picked, offer = self._slots(lead, message, understood, local_today, unsaved=unsaved)
            if picked is not None:
                text = picked  # the booking's confirmation, or the next slots after a lost race
            else:
                reply = build_reply(
                    lead, self.business, first=first, today=local_today, is_open_now=is_open,
                    text=message.text or "", asked=understood.intent if understood else None,
                    llm_answer=understood.answer if understood else None, unheard_voice=unheard_voice,
                    offer=offer,
                )  # fmt: skip
                text = reply.text
                if reply.unanswered:
                    lead = self._question_for_staff(lead, message, unsaved=unsaved)
        if not text:
            return lead
        if lead.client_address()[0] == "sms" and not lead.contact.phone:
            return lead  # a form that left only an e-mail: the owner calls back
        if not self._may_answer(lead, message.received_at):
            return lead  # a flood: the message is stored and on the card, the assistant stays quiet
        delivery = self.messenger.to_client(lead, f"reply:{message.message_id}", "reply", text)
        if delivery.outcome not in ("sent", "already_sent") or lead.first_reply_at is not None:
            return lead
        replied_at = clock.now()
        if unsaved:
            lead.first_reply_at = replied_at  # written with the new lead itself
            return lead
        changed = self.store.leads.change(
            lead.lead_id, lambda current: lifecycle.first_reply(current, replied_at), known=lead
        )
        metrics.add_metric(
            name="FirstResponseSeconds",
            unit="Seconds",
            value=max((replied_at - lead.received_at).total_seconds(), 0),
        )
        return changed.lead if changed else lead

    def _slots(
        self,
        lead: Lead,
        message: InboundMessage,
        understood: Qualification | None,
        today: date,
        *,
        unsaved: bool,
    ) -> tuple[Lead, str | None, str | None]:
        """(lead, the reply to a pick, an offer of slots): real slots when the business books for real.
        A booking system that does not answer leaves today's reply (the administrator confirms)."""
        if self.bookings.system is None or (understood is not None and understood.intent == Intent.question):
            return lead, None, None
        now = clock.now()
        try:
            picked = self.bookings.pick(lead, message.text or "", now, today, unsaved=unsaved)
            if picked is not None:
                if picked[0].routed and picked[0].appointment_at:  # the CRM and the card must follow
                    self.route_queue.send(LeadReady(lead_id=lead.lead_id, reason="booked"))
                return picked[0], picked[1], None
            if self.bookings.wants_offer(lead):
                lead, offer = self.bookings.offer(lead, now, today, unsaved=unsaved)
                return lead, None, offer
        except BookingUnavailable as exc:
            logger.warning("booking system unavailable", extra={"lead_id": lead.lead_id, "error": str(exc)})
            metrics.add_metric(name="BookingUnavailable", unit="Count", value=1)
        return lead, None, None

    def _question_for_staff(self, lead: Lead, message: InboundMessage, *, unsaved: bool) -> Lead:
        """The client was told an administrator will answer: the question goes on the card, and to
        the owner at once when the lead has one already (its card went out before the question)."""
        question = (message.text or "").strip()[:CARD_TEXT_CHARS]
        if unsaved:
            lead.question = question  # written with the new lead; route's card shows it
            return lead
        changed = self.store.leads.change(
            lead.lead_id, lambda current: lifecycle.await_staff_answer(current, question), known=lead
        )
        lead = changed.lead if changed else lead
        if lead.owner:
            who = lead.contact.name or "Клиент"
            self.messenger.to_owner(
                lead,
                f"question:{message.message_id}",
                f"❓ {who} спрашивает: «{question}». Ассистент не знает ответа и обещал, что ответит "
                f"администратор — ответьте на карточку ({lead.lead_id}).",
            )
        return lead

    def _may_answer(self, lead: Lead, now: datetime) -> bool:
        """At most ``replies.per_chat`` automatic answers in ``replies.window_min``: the lead keeps
        its last messages' times (written with the message itself), so this costs no request."""
        limits = self.business.replies
        since = now - timedelta(minutes=limits.window_min)
        if sum(1 for at in lead.inbound_at if at > since) <= limits.per_chat:
            return True
        metrics.add_metric(name="RepliesHeldBack", unit="Count", value=1)
        logger.info("reply held back: too many messages from one chat", extra={"channel": lead.channel})
        return False

    def _forward_to_owner(self, lead: Lead, message: InboundMessage) -> None:
        """After hand-over the assistant is quiet; the owner sees the client's words under the card."""
        if not lead.owner:
            return
        if message.attachments and lead.card_ref():
            return  # the files go under the card with the client's words (forward_attachments)
        # Under the card, in the card's chat; without a card, in the owner's chat.
        chat, card_message = lead.card_ref() or (self.messenger.staff_chat(lead.owner), None)
        delivery = self.messenger.send(
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
        answer = reminder_answer(message.text or "")
        if answer is None:
            return False
        texts = self.business.messages
        change, reply, verdict = {
            "move": (lifecycle.ask_to_move, texts.reschedule, "просит перенести визит 🔁"),
            "confirm": (lifecycle.confirm, texts.confirmed, "подтвердил визит ✅"),
            "cancel": (lifecycle.cancel, texts.cancelled, "отменил визит ❌"),
        }[answer]
        self.leads.apply(lead.lead_id, change, known=lead)
        if answer == "cancel":
            self.bookings.cancel(lead)  # the master's time is free again
        self.messenger.to_client(lead, f"reply:{message.message_id}", "reply", reply)
        note = f"{lead.contact.name or 'Клиент'} {verdict} ({lead.lead_id})"
        self.messenger.to_owner(lead, f"owner_note:{message.message_id}", note)
        return True

    # ------------------------------------------------------------------ hand-on to route
    def _hand_on(self, lead: Lead, message: InboundMessage, contact: ContactRecord) -> None:
        if lead.status in CLOSED_STATUSES:
            return
        if lead.routed:
            # What the client added (a phone after a hot lead went out) reaches the card and the CRM:
            # compared with what they show, so a redelivery after a crash still sends it.
            if lead.card and lead.card_shows != card_details_key(lead):
                self.route_queue.send(LeadReady(lead_id=lead.lead_id, reason="updated"))
            return
        if lead.intent == Intent.not_target:
            wait = emoji_wait_timer(lead)
            if wait is not None:  # «💅🔥»: open for a day in case words follow; closed by the timer else
                self.store.timers.put(wait, only_if_new=True)
                return
            self.route_queue.send(LeadReady(lead_id=lead.lead_id, reason="not_target", contact=contact))
            return
        complete = not missing_fields(lead, self.business) or lead.intent == Intent.question
        hot = lead.temperature == Temperature.hot or bool(message.call and message.call.missed)
        if complete or hot:
            self.route_queue.send(
                LeadReady(
                    lead_id=lead.lead_id,
                    reason="hot" if hot and not complete else "complete",
                    contact=contact,
                )
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
        self.leads.schedule_nudge(lead)


def _with_match(lead: Lead | None, contact_id: str | None) -> Lead | None:
    if lead is not None and contact_id and not lead.possible_match:
        lead.possible_match = contact_id
    return lead


def _known(business: BusinessConfig, branch_id: str | None) -> str | None:
    return branch_id if len(business.branches) > 1 and business.branch(branch_id) else None


def _media_only(message: InboundMessage) -> Qualification:
    missed = bool(message.call and message.call.missed)
    return Qualification(
        intent=Intent.booking,
        temperature=Temperature.hot if missed else Temperature.warm,
        urgent=missed,
        engine="none",
    )
