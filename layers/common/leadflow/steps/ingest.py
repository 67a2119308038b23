"""ingest: the front door — verify, normalise, store the raw payload, enqueue. Nothing slow here.

Per accepted message: one conditional write (the raw payload + dedupe mark), one enqueue, and
one write marking it queued. A platform's retry of a message that is not known to be queued (the
invocation died between the write and the enqueue) is queued again: score and route are safe to
run twice; losing the lead is not. Telegram updates are sorted here, once: staff traffic goes
straight to route, a client's message to score (one read of the staff chat table).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from leadflow import clock, failpoints
from leadflow.adapters.channels.base import WebhookError, WebhookRequest, WebhookResult
from leadflow.adapters.queues import Queue
from leadflow.adapters.store.inbox import InboxStore
from leadflow.domain.models import DeliveryReport, StaffEvent
from leadflow.observability import logger, metrics

CHANNEL_MODULES = {
    "telegram": "leadflow.adapters.channels.telegram",
    "whatsapp": "leadflow.adapters.channels.whatsapp",
    "instagram": "leadflow.adapters.channels.instagram",
    "vk": "leadflow.adapters.channels.vk",
    "form": "leadflow.adapters.channels.form",
    "call": "leadflow.adapters.channels.call",
    "sms": "leadflow.adapters.channels.sms",
    "bitrix24": "leadflow.adapters.channels.bitrix24_events",
    "yclients": "leadflow.adapters.channels.yclients_events",
    "amocrm": "leadflow.adapters.channels.amocrm_events",
    "payment": "leadflow.adapters.channels.payment_events",
}
# SQS refuses a body over 256 KiB; DynamoDB an item over 400 KB. The raw payload gets what the
# queue message leaves of the item (it is a debugging aid, the queue message is what counts).
QUEUE_MESSAGE_LIMIT = 262_144
ITEM_BUDGET = 390_000  # bytes for raw + message; the rest of the item is well under 10 KB
# What a parser may raise on a payload shape it did not expect (deep nesting included).
PARSE_ERRORS = (ValidationError, ValueError, LookupError, TypeError, AttributeError, ArithmeticError,
                RecursionError)  # fmt: skip


@dataclass(frozen=True)
class Response:
    status: int
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"


def _handler_for(channel: str) -> Callable[[WebhookRequest], WebhookResult] | None:
    module_name = CHANNEL_MODULES.get(channel)
    if module_name is None:
        return None
    return importlib.import_module(module_name).handle_webhook  # type: ignore[no-any-return]


class Ingest:
    def __init__(
        self, inbox: InboxStore, score_queue: Queue, route_queue: Queue, max_body_bytes: int,
        staff_of_chat: Callable[[str], str | None],
    ):  # fmt: skip
        self.inbox = inbox
        self.score_queue = score_queue
        self.route_queue = route_queue
        self.max_body_bytes = max_body_bytes
        self.staff_of_chat = staff_of_chat

    def handle_event(self, event: dict, context: Any) -> dict:
        """An API Gateway HTTP API event for one of ingest's routes → its answer."""
        answer = self.handle(WebhookRequest.from_api_gateway(event))
        return {
            "statusCode": answer.status,
            "headers": {"Content-Type": answer.content_type},
            "body": answer.body,
        }

    def handle(self, request: WebhookRequest) -> Response:
        handle_webhook = _handler_for(request.channel)
        if handle_webhook is None:
            return Response(404, "unknown channel")
        if len(request.body) > self.max_body_bytes:
            logger.info("refused", extra={"channel": request.channel, "status": 413})
            return Response(413, "body too large")
        try:
            result = handle_webhook(request)
        except WebhookError as exc:
            logger.info(
                "refused", extra={"channel": request.channel, "status": exc.status, "reason": exc.reason}
            )
            metrics.add_metric(name="WebhookRefused", unit="Count", value=1)
            return Response(exc.status, "forbidden" if exc.status in (401, 403) else exc.reason)
        except PARSE_ERRORS as exc:
            # A channel parser tripping on a payload shape it did not expect: the client's
            # fault, answered 400 and logged without the payload.
            logger.warning(
                "unparseable payload", extra={"channel": request.channel, "error": type(exc).__name__}
            )
            return Response(400, "malformed payload")

        if result.chat_decides:
            _keep_one_reading(result, self.staff_of_chat)
        branch = request.query.get("branch", "").strip()[:200]
        if branch:  # a webhook URL of its own per branch (…/webhooks/form?branch=center)
            for message in result.messages:
                message.branch = message.branch or branch
        events = [*result.staff_events, *result.crm_events, *_delivery_reports(result)]
        queued = [
            *((m.message_id, m.model_dump_json(), self.score_queue) for m in result.messages),
            *((e.event_id, e.model_dump_json(), self.route_queue) for e in events),
        ]
        if any(len(body.encode()) > QUEUE_MESSAGE_LIMIT for _, body, _ in queued):
            logger.info(
                "refused", extra={"channel": request.channel, "status": 413, "reason": "message too large"}
            )
            return Response(413, "message too large")
        taken = sum(
            self._accept(key, request.channel, request.body, body, queue) for key, body, queue in queued
        )
        extra: dict[str, Any] = {"channel": request.channel, "taken": taken}
        if result.note:
            extra["note"] = result.note
        logger.info("accepted", extra=extra)
        if taken:
            metrics.add_metric(name="MessagesAccepted", unit="Count", value=taken)
        return Response(result.status, result.body, result.content_type)

    def _accept(self, key: str, channel: str, body: bytes, message: str, queue: Queue) -> int:
        raw = _truncated(body, ITEM_BUDGET - len(message.encode()))
        if not self.inbox.accept(key, channel, raw, message, clock.now()):
            metrics.add_metric(name="DuplicatesIgnored", unit="Count", value=1)
            return 0
        failpoints.hit("ingest.after_store")
        try:
            queue.send_json(message)
        except Exception:
            # Answered 5xx: the platform retries, and the retry finds the item not queued and takes it.
            logger.error("enqueue failed", extra={"channel": channel})
            raise
        failpoints.hit("ingest.after_enqueue")
        self.inbox.mark_queued(key)
        return 1


def _keep_one_reading(result: WebhookResult, staff_of_chat: Callable[[str], str | None]) -> None:
    """A Telegram update from a staff member's chat is staff traffic (a plain message included);
    from anybody else's it is a client's message — but a ``/start inv-…`` is always onboarding."""
    chats = {m.chat_id for m in result.messages} | {e.chat_id for e in result.staff_events}
    staff_chat = any(staff_of_chat(chat) for chat in chats)
    if staff_chat:
        readings = {e.event_id for e in result.staff_events}
        result.staff_events.extend(
            StaffEvent(
                event_id=m.message_id,
                chat_id=m.chat_id,
                user_id=m.contact.channel_user_id or "",
                action="message",
                text=m.text,
                received_at=m.received_at,
            )
            for m in result.messages
            if m.message_id not in readings
        )
        result.messages.clear()
    else:
        onboarding = [e for e in result.staff_events if e.action == "/start"]
        if onboarding:
            result.messages.clear()
        result.staff_events[:] = onboarding
    result.chat_decides = False


def _truncated(body: bytes, limit: int) -> str:
    # "ignore": a cut multi-byte character must not grow into a 3-byte U+FFFD per byte.
    return body[: max(limit, 0)].decode("utf-8", errors="ignore")


def _delivery_reports(result: WebhookResult) -> list[DeliveryReport]:
    """SMS delivery callbacks (channels.sms.SmsWebhookResult.statuses) as queue messages."""
    now = clock.now()
    return [
        DeliveryReport(
            event_id=f"sms:status:{s.provider_message_id}:{s.status}",
            provider_message_id=s.provider_message_id,
            status=s.status,
            error=s.error,
            received_at=now,
        )
        for s in getattr(result, "statuses", [])
    ]
