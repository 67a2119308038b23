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
from leadflow.channels.base import Sender, SendError, SendResult
from leadflow.config import secret, settings
from leadflow.models import OutboundMessage
from leadflow.observability import logger, metrics
from leadflow.store import Store

Outcome = Literal["sent", "already_sent", "failed"]


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
        from leadflow.channels.telegram import TelegramBot, TelegramSender

        return TelegramSender(TelegramBot(token, base_url=cfg.telegram_api_base))
    if channel == "whatsapp" and (token := secret("WHATSAPP_TOKEN")) and cfg.whatsapp_phone_number_id:
        from leadflow.channels.whatsapp import WhatsAppSender

        return WhatsAppSender(token, cfg.whatsapp_phone_number_id, base_url=cfg.meta_graph_base)
    if channel == "instagram" and (token := secret("INSTAGRAM_TOKEN")):
        from leadflow.channels.instagram import InstagramSender

        return InstagramSender(token, base_url=cfg.meta_graph_base)
    if channel == "vk" and (token := secret("VK_TOKEN")):
        from leadflow.channels.vk import VkSender

        return VkSender(token, base_url=cfg.vk_api_base)
    if channel in ("sms", "call", "form") and cfg.sms_provider:
        from leadflow.channels.sms import SmsSender
        from leadflow.channels.sms_providers import make_sms_provider

        return SmsSender(make_sms_provider(cfg, secret))
    return OutboxSender(channel)


@functools.cache
def default_sender(channel: str) -> Sender:
    return _sender_for(channel)


class Outbound:
    def __init__(self, store: Store, sender_for: Callable[[str], Sender] = default_sender):
        self.store = store
        self.sender_for = sender_for

    def send(self, message: OutboundMessage) -> Delivery:
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
            if exc.retryable and retry_later:
                self.store.conversation.finish_outbound(message, "retry", now, error=exc.reason, via=via)
                metrics.add_metric(name="SendRetried", unit="Count", value=1)
                raise
            self.store.conversation.finish_outbound(message, "failed", now, error=exc.reason, via=via)
            logger.warning(
                "send failed", extra={"kind": message.kind, "channel": message.channel, "reason": exc.reason}
            )
            metrics.add_metric(name="SendFailed", unit="Count", value=1)
            return Delivery("failed")
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


def _editor(sender: Sender, what: str) -> Editor:
    if not hasattr(sender, what):
        raise SendError(f"{sender.channel or type(sender).__name__} cannot {what}", retryable=False)
    return sender  # type: ignore[return-value]
