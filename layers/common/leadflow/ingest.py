"""The front door: verify, normalise, store the raw payload, enqueue. Nothing slow happens here.

Per accepted message: one conditional write (the raw payload + dedupe mark) and one enqueue.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from leadflow import clock
from leadflow.channels.base import WebhookError, WebhookRequest, WebhookResult
from leadflow.observability import logger, metrics
from leadflow.queues import Queue
from leadflow.store.inbox import InboxStore

CHANNEL_MODULES = {
    "telegram": "leadflow.channels.telegram",
    "whatsapp": "leadflow.channels.whatsapp",
    "instagram": "leadflow.channels.instagram",
    "vk": "leadflow.channels.vk",
    "form": "leadflow.channels.form",
    "call": "leadflow.channels.call",
    "sms": "leadflow.channels.sms",
    "bitrix24": "leadflow.channels.bitrix24_events",
}
RAW_LIMIT = 300_000  # DynamoDB items stop at 400 KB; no real webhook comes near


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
    def __init__(self, inbox: InboxStore, score_queue: Queue, route_queue: Queue, max_body_bytes: int):
        self.inbox = inbox
        self.score_queue = score_queue
        self.route_queue = route_queue
        self.max_body_bytes = max_body_bytes

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
        except (ValidationError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # A channel parser tripping on a payload shape it did not expect: the client's
            # fault, answered 400 and logged without the payload.
            logger.warning(
                "unparseable payload", extra={"channel": request.channel, "error": type(exc).__name__}
            )
            return Response(400, "malformed payload")

        raw = request.body[:RAW_LIMIT].decode("utf-8", errors="replace")
        taken = 0
        for message in result.messages:
            taken += self._accept(message.message_id, request.channel, raw, message, self.score_queue)
        for event in [*result.staff_events, *result.crm_events]:
            taken += self._accept(event.event_id, request.channel, raw, event, self.route_queue)
        extra: dict[str, Any] = {"channel": request.channel, "taken": taken}
        if result.note:
            extra["note"] = result.note
        logger.info("accepted", extra=extra)
        if taken:
            metrics.add_metric(name="MessagesAccepted", unit="Count", value=taken)
        return Response(result.status, result.body, result.content_type)

    def _accept(self, key: str, channel: str, raw: str, message: BaseModel, queue: Queue) -> int:
        if not self.inbox.accept(key, channel, raw, message.model_dump_json(), clock.now()):
            metrics.add_metric(name="DuplicatesIgnored", unit="Count", value=1)
            return 0
        queue.send(message)
        return 1
