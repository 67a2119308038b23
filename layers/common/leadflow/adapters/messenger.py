"""Sending, exactly once, to a lead's client or to a staff member — the one way a step sends.

Every outbound message has an idempotency id (``reply:<inbound id>``, ``card:<lead>:<owner>``…)
and is claimed in the conversation table before it is sent: a retried batch or an overlapping
scheduled run finds the claim and does not send again. A retryable failure releases the claim
and raises, so the queue retries later; a permanent one is recorded and reported to the caller.

A channel with no token (or the local stack's LEADFLOW_OUTBOX_ONLY) gets the ``OutboxSender``:
the message is only recorded, and the conversation table *is* the outbox `leadflow outbox` shows.

Reaching a client from a scheduled job (``reach_client``): WhatsApp delivers free text only
within 24 hours of the client's last message; outside that window a reminder goes as the
business's approved template (``messages.whatsapp_template``), else by SMS when the client left a
phone and SMS is configured, else the caller tells the owner. Each attempt is an exactly-once
message of its own (``<id>``, ``<id>:template``, ``<id>:sms``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Protocol

from leadflow import clock
from leadflow.adapters.channels.base import Sender, SendError, SendResult, UnknownOutcome
from leadflow.adapters.channels.toolkit import end_requests_by
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig, clock_time
from leadflow.domain.models import Builder, Lead, OutboundMessage, StaffState
from leadflow.domain.sms import MARKETING_KINDS, STAFF_KINDS, sms_country, sms_policy
from leadflow.observability import logger, metrics

Outcome = Literal["sent", "already_sent", "failed", "refused"]
# How reach_client went; "failed" and "window_closed" mean the client was not reached.
Reached = Literal["sent", "already_sent", "template", "sms", "failed", "window_closed", "refused"]
# Russian businesses approve their WhatsApp templates in Russian.
TEMPLATE_LANGUAGE = "ru"
BUILDERS = frozenset(b.value for b in Builder)
DEFAULT_CLAIM_S = 120  # outside a Lambda invocation (CLI, tests): a claim holds two minutes
CLAIM_GRACE_S = 5  # Lambda's kill comes at the deadline; a little slack for clock skew


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    provider_message_id: str | None = None


class OutboxSender(Sender):
    """Records instead of sending (local stack, or a channel with no token configured)."""

    def __init__(self, channel: str):
        self.channel = channel

    def send(self, message: OutboundMessage) -> SendResult:
        # A number, like Telegram's message ids, so replies to a recorded lead card work locally too.
        digest = hashlib.sha256(message.id.encode()).hexdigest()
        return SendResult(provider_message_id=str(int(digest[:12], 16) % 2_000_000_000))

    def edit(self, message: OutboundMessage) -> SendResult:
        return SendResult(provider_message_id=message.reply_to_message_id)

    def answer_callback(self, callback_query_id: str, text: str) -> SendResult:
        return SendResult()


class RefusingSender(Sender):
    """A channel that cannot work as configured (an SMS provider without its key): every send is
    a permanent failure with the reason, recorded on the message — never an exception that stops a step."""

    def __init__(self, channel: str, reason: str):
        self.channel = channel
        self.reason = reason

    def send(self, message: OutboundMessage) -> SendResult:
        raise SendError(self.reason, retryable=False)


class Editor(Protocol):
    """A sender that can also change a message it sent and answer a button press (Telegram)."""

    def edit(self, message: OutboundMessage) -> SendResult: ...

    def answer_callback(self, callback_query_id: str, text: str) -> SendResult: ...


SenderFor = Callable[[str], Sender]


class Messenger:
    def __init__(
        self, store: Store, business: BusinessConfig, sender_for: SenderFor, *, sms_configured: bool
    ):
        self.store = store
        self.business = business
        self.sender_for = sender_for
        self.sms_configured = sms_configured
        self._deadline: float | None = None  # wall-clock epoch seconds of this invocation's end

    # ------------------------------------------------------------------ claims
    def until_deadline(self, context: object) -> None:
        """Claims made from now on last until this Lambda invocation's deadline (its context's
        remaining time), and requests end before it; without a context (CLI, tests) claims last
        DEFAULT_CLAIM_S and requests their own timeouts."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        self._deadline = time.time() + remaining() / 1000 if callable(remaining) else None
        end_requests_by(self._deadline)  # and no channel's request outlives the invocation

    def claim_until(self) -> float:
        """Until when a claim made now holds (wall-clock epoch seconds)."""
        if self._deadline is None:
            return time.time() + DEFAULT_CLAIM_S
        return self._deadline + CLAIM_GRACE_S

    # ------------------------------------------------------------------ addressing
    def staff_chat(self, staff_id: str) -> str:
        """The staff member's Telegram chat (onboarding), else the config's, else ``staff:<id>`` —
        recorded in the outbox, not sent: the member has not connected yet."""
        return self.chat_of(staff_id, self.store.staff.state([staff_id])[staff_id])

    def chat_of(self, staff_id: str, state: StaffState) -> str:
        """``staff_chat`` for a member whose state was read already."""
        member = self.business.staff_member(staff_id)
        return str(
            state.telegram_chat_id or (member.telegram_chat_id if member else None) or f"staff:{staff_id}"
        )

    def to_client(self, lead: Lead, message_id: str, kind: str, text: str) -> Delivery:
        """To the client's own chat; a chatbot builder that cannot reach them (its 24 hours passed, the
        subscriber is gone) hands over to an SMS when the client left a phone (``<id>:sms``)."""
        message = client_message(lead, message_id, kind, text)
        delivery = self.send(message)
        if delivery.outcome == "failed" and message.channel in BUILDERS and lead.contact.phone:
            metrics.add_metric(name="BuilderUnreachable", unit="Count", value=1)
            return self.send(_as_sms(message, lead.contact.phone))
        return delivery

    def to_staff(
        self, staff_id: str, lead: Lead | None, message_id: str, kind: str, text: str,
        buttons: list[list[dict]] | None = None,
    ) -> Delivery:  # fmt: skip
        return self.send(
            OutboundMessage(
                id=message_id,
                channel="telegram",
                to=self.staff_chat(staff_id),
                lead_id=lead.lead_id if lead else None,
                kind=kind,
                text=text,
                buttons=buttons or [],
            )
        )

    def to_owner(self, lead: Lead, message_id: str, text: str) -> Delivery | None:
        """A note to the lead's owner about their lead (none while it has no owner)."""
        if not lead.owner:
            return None
        return self.to_staff(lead.owner, lead, message_id, "owner_note", text)

    # ------------------------------------------------------------------ exactly once
    def send(self, message: OutboundMessage) -> Delivery:
        if message.channel == "sms":
            refusal = self._sms_refusal(message)
            if refusal is not None:
                return refusal
        return self._deliver(message, lambda sender: sender.send(message))

    def edit(self, message: OutboundMessage) -> Delivery:
        """Change a message sent before (its id in ``reply_to_message_id``), exactly once per ``message.id``.

        Same contract as ``send``: a retryable failure (429) raises so the queue retries; a permanent
        one (400 message gone, 403 blocked) is recorded and reported as ``failed``.
        """
        if not message.reply_to_message_id:
            raise ValueError("an edit needs the id of the message to change (reply_to_message_id)")
        return self._deliver(message, lambda sender: _editor(sender, "edit").edit(message))

    def answer_callback(
        self, event_id: str, chat_id: str, callback_query_id: str, text: str, lead_id: str | None = None
    ) -> Delivery:
        """Answer a button press once (the toast staff see). Never raises for a retryable failure:
        Telegram forgets a callback query within seconds, so a queue retry minutes later could only fail."""
        message = OutboundMessage(
            id=f"callback:{event_id}",
            channel="telegram",
            to=chat_id,
            lead_id=lead_id,
            kind="callback_answer",
            text=text,
        )
        return self._deliver(
            message,
            lambda sender: _editor(sender, "answer_callback").answer_callback(callback_query_id, text),
            retry_later=False,
        )

    def _sms_refusal(self, message: OutboundMessage) -> Delivery | None:
        """The law before the transport: an opted-out number is never texted, marketing needs
        consent and waits out the night. Checked for every SMS, outbox included."""
        lead = self.store.leads.get(message.lead_id) if message.lead_id else None
        contact = self.store.contacts.get(lead.contact_id) if lead is not None else None
        # The number itself may belong to another contact (a phone typed in a form is never merged):
        # a «СТОП» from that number counts whichever lead the text is for.
        owner = self.store.contacts.owner_of(f"phone#{message.to}")
        number = (
            self.store.contacts.get(owner)
            if owner and (contact is None or owner != contact.contact_id)
            else None
        )
        quiet = self.business.reminders.quiet_hours
        decision = sms_policy(
            message.kind,
            opted_out=bool((contact and contact.sms_opt_out) or (number and number.sms_opt_out)),
            marketing_consent=bool(contact and contact.marketing_consent),
            now_local=clock.now().astimezone(self.business.tz),
            quiet_start=clock_time(quiet.start),
            quiet_end=clock_time(quiet.end),
        )
        if decision.action == "wait":
            raise SendError(f"sms waits: {decision.reason}", retryable=True)
        reason = decision.reason if decision.action == "refuse" else self._over_budget(message)
        if reason is None:
            return None
        if (
            self.store.conversation.claim_outbound(message, clock.now(), claim_until=self.claim_until())
            == "claimed"
        ):
            self.store.conversation.finish_outbound(message, "refused", clock.now(), error=reason)
        metrics.add_metric(name="SmsRefused", unit="Count", value=1)
        return Delivery("refused")

    def _over_budget(self, message: OutboundMessage) -> str | None:
        """Why an automatic SMS may not go (SMS pumping), or None. Staff's own texts are not limited."""
        if message.kind in STAFF_KINDS:
            return None
        sms = self.business.sms
        if sms_country(message.to) not in sms.countries:
            return "country not allowed"
        if self.store.conversation.is_recorded(message):
            return None  # counted when it was first claimed: a retry is not a second SMS
        now = clock.now()
        day, hour = now.strftime("%Y%m%d"), now.strftime("%Y%m%d%H")
        if not self.store.counters.take(f"sms_hour#{hour}", sms.per_hour, now + timedelta(hours=2)):
            self._tell_budget_spent(hour)
            return "hourly SMS budget spent"
        if not self.store.counters.take(
            f"sms_phone#{message.to}#{day}", sms.per_phone_per_day, now + timedelta(days=2)
        ):
            return "daily SMS limit for this number"
        return None

    def _tell_budget_spent(self, hour: str) -> None:
        """Once an hour at most: the owner hears that automatic SMS stopped (and why it may matter)."""
        text = (
            f"⚠️ За этот час отправлено больше {self.business.sms.per_hour} автоматических SMS — до конца часа "
            "они остановлены. Если это не наплыв клиентов, возможна атака на форму сайта."
        )
        readers = [s.id for s in self.business.staff if s.active and s.role in ("owner", "senior", "manager")]
        for staff_id in readers[:3] or ["owner"]:
            self.to_staff(staff_id, None, f"sms_budget:{hour}:{staff_id}", "sms_budget", text)

    def _deliver(
        self, message: OutboundMessage, attempt: Callable[[Sender], SendResult], *, retry_later: bool = True
    ) -> Delivery:
        now = clock.now()
        sender = self.sender_for(message.channel)
        via = "outbox" if isinstance(sender, OutboxSender) else "api"
        claim = self.store.conversation.claim_outbound(message, now, claim_until=self.claim_until())
        if claim == "stale":
            # Its sender died mid-send: ask the provider where it can be asked, else count it sent.
            found = self._confirm_unknown_outcome(sender, message, UnknownOutcome("a sender died mid-send"))
            if found is not None:
                self._finish_sent(message, found, via)
                return Delivery("sent", found.provider_message_id)
            lease = self.store.conversation.lease_of(message)
            claim = self.store.conversation.claim_outbound(
                message, now, claim_until=self.claim_until(), stale=lease
            )
        if claim == "sent":
            return Delivery("already_sent")
        if claim in ("in_flight", "stale"):
            if not retry_later:
                return Delivery("already_sent")  # the other worker's attempt is the only one worth making
            # Another worker is sending it right now; retrying later is safe (it will be 'sent').
            raise SendError("send in flight elsewhere", retryable=True)
        try:
            result = attempt(sender)
        except SendError as exc:
            confirmed = self._confirm_unknown_outcome(sender, message, exc)
            if confirmed is None:
                return self._not_sent(message, exc, now, via, retry_later)
            result = confirmed
        except BaseException:
            # Not a send failure we know (a bug, a crash of the client library): release the claim
            # so the queue's retry can send — the request never completed.
            self.store.conversation.finish_outbound(message, "retry", now, error="unexpected error", via=via)
            raise
        self._finish_sent(message, result, via)
        return Delivery("sent", result.provider_message_id)

    def _finish_sent(self, message: OutboundMessage, result: SendResult, via: str) -> None:
        if message.channel == "sms" and result.provider_message_id:
            self.store.conversation.remember_provider_id("sms", result.provider_message_id, message)
        self.store.conversation.finish_outbound(
            message,
            "sent",
            clock.now(),
            via=via,
            provider_message_id=result.provider_message_id,
            segments=result.segments,
            cost=result.cost,
        )
        metrics.add_metric(name="MessagesSent", unit="Count", value=1)

    def _not_sent(
        self, message: OutboundMessage, exc: SendError, now, via: str, retry_later: bool
    ) -> Delivery:
        """Retryable → released and raised (the queue retries); permanent → recorded as failed."""
        if exc.retryable and retry_later:
            self.store.conversation.finish_outbound(message, "retry", now, error=exc.reason, via=via)
            metrics.add_metric(name="SendRetried", unit="Count", value=1)
            raise exc
        self.store.conversation.finish_outbound(message, "failed", now, error=exc.reason, via=via)
        logger.warning(
            "send failed", extra={"kind": message.kind, "channel": message.channel, "reason": exc.reason}
        )
        metrics.add_metric(name="SendFailed", unit="Count", value=1)
        return Delivery("failed")

    def _confirm_unknown_outcome(
        self, sender: Sender, message: OutboundMessage, exc: SendError
    ) -> SendResult | None:
        """A request that went out and got no answer: ask the provider instead of sending again.

        Returns the send if it happened (or may have, and nobody can tell: a possible gap beats a
        double message to a client). If it surely did not, the error becomes retryable."""
        if not isinstance(exc, UnknownOutcome):
            return None
        if not hasattr(sender, "confirm"):
            logger.warning("outcome unknown and not checkable: counted as sent", extra={"kind": message.kind})
            metrics.add_metric(name="SendOutcomeUnknown", unit="Count", value=1)
            return SendResult(provider_message_id=None)
        from leadflow.adapters.channels.sms_providers import ProviderCannotQuery

        try:
            found = sender.confirm(message)
        except ProviderCannotQuery:
            logger.warning(
                "sms outcome unknown and not checkable: counted as sent", extra={"kind": message.kind}
            )
            return SendResult(provider_message_id=None)
        except SendError:
            found = None
        if found is None:
            exc.retryable = True  # the provider has no such message: sending again is safe
        return found

    # ------------------------------------------------------------------ a scheduled message to a client
    def reach_client(self, lead: Lead, message: OutboundMessage, *, consent: bool) -> Reached:
        """Send ``message``; through a closed WhatsApp window try the template, then SMS.

        ``consent``: the client agreed to marketing messages (a marketing kind goes by SMS only then).
        """
        watch: dict[str, _WindowWatch] = {}

        def watched(channel: str) -> Sender:
            watch[channel] = _WindowWatch(self.sender_for(channel))
            return watch[channel]

        first = self._with_senders(watched).send(message)
        if first.outcome != "failed":
            return first.outcome
        if message.channel in BUILDERS:  # the builder could not reach them: SMS, as for a closed window
            return "sms" if self._sms_fallback(lead, message, consent=consent) else "failed"
        if not (message.channel == "whatsapp" and watch.get("whatsapp") and watch["whatsapp"].window_closed):
            return "failed"
        metrics.add_metric(name="WhatsAppWindowClosed", unit="Count", value=1)
        template = self.business.messages.whatsapp_template
        if template and self._try(
            self._with_senders(lambda channel: _TemplateSender(self.sender_for(channel), template)),
            message.model_copy(update={"id": f"{message.id}:template"}),
        ):
            return "template"
        return "sms" if self._sms_fallback(lead, message, consent=consent) else "window_closed"

    def _sms_fallback(self, lead: Lead, message: OutboundMessage, *, consent: bool) -> bool:
        """The same message by SMS (``<id>:sms``) when the client left a phone, SMS is set up and the
        kind may go by SMS (marketing only with consent). True when it went."""
        phone = lead.contact.phone
        sms_allowed = consent or message.kind not in MARKETING_KINDS
        return bool(
            phone and self.sms_configured and sms_allowed and self._try(self, _as_sms(message, phone))
        )

    def _with_senders(self, sender_for: SenderFor) -> Messenger:
        other = Messenger(self.store, self.business, sender_for, sms_configured=self.sms_configured)
        other._deadline = self._deadline
        return other

    @staticmethod
    def _try(messenger: Messenger, message: OutboundMessage) -> bool:
        """One fallback attempt; a failure of any sort moves on to the next fallback."""
        try:
            return messenger.send(message).outcome != "failed"
        except SendError as exc:
            logger.warning("fallback send failed", extra={"kind": message.kind, "reason": exc.reason})
            return False


def client_message(lead: Lead, message_id: str, kind: str, text: str) -> OutboundMessage:
    channel, to = lead.client_address()
    return OutboundMessage(
        id=message_id,
        channel=channel,
        to=to,
        lead_id=lead.lead_id,
        kind=kind,
        text=text,
        business_connection_id=lead.business_connection_id,
    )


def _as_sms(message: OutboundMessage, phone: str) -> OutboundMessage:
    update = {"id": f"{message.id}:sms", "channel": "sms", "to": phone, "business_connection_id": None}
    return message.model_copy(update=update)


def _editor(sender: Sender, what: str) -> Editor:
    if not hasattr(sender, what):
        raise SendError(f"{sender.channel or type(sender).__name__} cannot {what}", retryable=False)
    return sender  # type: ignore[return-value]


class _WindowWatch(Sender):
    """Passes a send through and remembers whether the channel's window was closed."""

    def __init__(self, inner: Sender):
        self.inner = inner
        self.channel = inner.channel
        self.window_closed = False

    def send(self, message: OutboundMessage) -> SendResult:
        from leadflow.adapters.channels.meta import OutsideWindow

        try:
            return self.inner.send(message)
        except OutsideWindow:
            self.window_closed = True
            raise


class _TemplateSender(Sender):
    """Sends the message's text as the single body parameter of an approved template.

    One utility template with one variable (``{{1}}``) serves every scheduled message kind, so
    a business approves one template, not one per kind.
    """

    channel = "whatsapp"

    def __init__(self, inner: Sender, name: str):
        self.inner = inner
        self.name = name

    def send(self, message: OutboundMessage) -> SendResult:
        send_template = getattr(self.inner, "send_template", None)
        if send_template is None:
            return self.inner.send(message)  # the local outbox records it
        # Template parameters may not hold line breaks.
        return send_template(message.to, self.name, TEMPLATE_LANGUAGE, [" ".join(message.text.split())])
