"""Sending messages exactly once, through the channel's API or the local outbox.

Every outbound message has an idempotency id (``reply:<inbound id>``, ``card:<lead>:<owner>``…)
and is claimed in the conversation table before it is sent: a retried batch or an overlapping
scheduled run finds the claim and does not send again. A retryable failure releases the claim
and raises, so the queue retries later; a permanent one is recorded and reported to the caller.

With no token for a channel (or LEADFLOW_OUTBOX_ONLY in the local stack) the message is only
recorded: the conversation table *is* the outbox that `leadflow outbox` shows.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from leadflow import clock
from leadflow.adapters.channels.base import Sender, SendError, SendResult
from leadflow.adapters.store import Store
from leadflow.business import clock_time
from leadflow.domain.models import OutboundMessage
from leadflow.observability import logger, metrics
from leadflow.settings import secret, settings

Outcome = Literal["sent", "already_sent", "failed", "refused"]


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


class Editor(Protocol):
    """A sender that can also change a message it sent and answer a button press (Telegram)."""

    def edit(self, message: OutboundMessage) -> SendResult: ...

    def answer_callback(self, callback_query_id: str, text: str) -> SendResult: ...


def _sender_for(channel: str) -> Sender:
    cfg = settings()
    if cfg.outbox_only:
        return OutboxSender(channel)
    if channel == "telegram" and (token := secret("TELEGRAM_BOT_TOKEN")):
        from leadflow.adapters.channels.telegram import TelegramBot, TelegramSender

        return TelegramSender(TelegramBot(token, base_url=cfg.telegram_api_base))
    if channel == "whatsapp" and (token := secret("WHATSAPP_TOKEN")) and cfg.whatsapp_phone_number_id:
        from leadflow.adapters.channels.whatsapp import WhatsAppSender

        return WhatsAppSender(token, cfg.whatsapp_phone_number_id, base_url=cfg.meta_graph_base)
    if channel == "instagram" and (token := secret("INSTAGRAM_TOKEN")):
        from leadflow.adapters.channels.instagram import InstagramSender

        return InstagramSender(token, base_url=cfg.meta_graph_base)
    if channel == "vk" and (token := secret("VK_TOKEN")):
        from leadflow.adapters.channels.vk import VkSender

        return VkSender(token, base_url=cfg.vk_api_base)
    if channel in ("sms", "call", "form") and cfg.sms_provider:
        from leadflow.adapters.channels.sms import SmsSender
        from leadflow.adapters.channels.sms_providers import make_sms_provider

        provider = make_sms_provider(cfg, secret)
        if provider is not None:
            return SmsSender(provider, sender=cfg.sms_sender)
    return OutboxSender(channel)


@functools.cache
def default_sender(channel: str) -> Sender:
    return _sender_for(channel)


class Outbound:
    def __init__(
        self,
        store: Store,
        sender_for: Callable[[str], Sender] = default_sender,
    ):
        self.store = store
        self.sender_for = sender_for

    def send(self, message: OutboundMessage) -> Delivery:
        if message.channel == "sms":
            refusal = self._sms_refusal(message)
            if refusal is not None:
                return refusal
        return self._deliver(message, lambda sender: sender.send(message))

    def _sms_refusal(self, message: OutboundMessage) -> Delivery | None:
        """The law before the transport: an opted-out number is never texted, marketing needs
        consent and waits out the night. Checked for every SMS, outbox included."""
        from leadflow.adapters.channels.sms import sms_policy

        contact: dict = {}
        lead = self.store.leads.get(message.lead_id) if message.lead_id else None
        if lead is not None:
            contact = self.store.contacts.get(lead.contact_id)
        business = self.store.config.get()  # its quiet hours
        quiet = business.reminders.quiet_hours
        decision = sms_policy(
            message.kind,
            opted_out=bool(contact.get("sms_opt_out")),
            marketing_consent=bool(contact.get("marketing_consent")),
            now_local=clock.now().astimezone(business.tz),
            quiet_start=clock_time(quiet.start),
            quiet_end=clock_time(quiet.end),
        )
        if decision.action == "send":
            return None
        if decision.action == "wait":
            raise SendError(f"sms waits: {decision.reason}", retryable=True)
        if self.store.conversation.claim_outbound(message, clock.now()) == "claimed":
            self.store.conversation.finish_outbound(message, "refused", clock.now(), error=decision.reason)
        metrics.add_metric(name="SmsRefused", unit="Count", value=1)
        return Delivery("refused")

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

    def _deliver(
        self, message: OutboundMessage, attempt: Callable[[Sender], SendResult], *, retry_later: bool = True
    ) -> Delivery:
        now = clock.now()
        claim = self.store.conversation.claim_outbound(message, now)
        if claim == "sent":
            return Delivery("already_sent")
        if claim == "in_flight":
            if not retry_later:
                return Delivery("already_sent")  # the other worker's attempt is the only one worth making
            # Another worker is sending it right now; retrying later is safe (it will be 'sent').
            raise SendError("send in flight elsewhere", retryable=True)
        sender = self.sender_for(message.channel)
        via = "outbox" if isinstance(sender, OutboxSender) else "api"
        try:
            result = attempt(sender)
        except SendError as exc:
            confirmed = self._confirm_unknown_outcome(sender, message, exc)
            if confirmed is None:
                return self._not_sent(message, exc, now, via, retry_later)
            result = confirmed
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
        return Delivery("sent", result.provider_message_id)

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
        """A timeout whose outcome is unknown (SMS): ask the provider instead of sending again.

        Returns the send if it happened. If it surely did not, the error becomes retryable; if the
        provider cannot be asked, the message counts as sent — a possible gap beats a double text."""
        if type(exc).__name__ != "UnknownOutcome" or not hasattr(sender, "confirm"):
            return None
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


def _editor(sender: Sender, what: str) -> Editor:
    if not hasattr(sender, what):
        raise SendError(f"{sender.channel or type(sender).__name__} cannot {what}", retryable=False)
    return sender  # type: ignore[return-value]
