"""What every channel module provides: a webhook parser/verifier and, for messengers, a sender.

A channel module exposes ``handle_webhook(request) -> WebhookResult``. It verifies the sender
(raising ``WebhookError`` with 401/403), parses the payload into queue messages (raising
``WebhookError`` with 400 on malformed input) and says what to answer the platform.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass, field
from typing import Any

from leadflow.domain.models import CrmEvent, InboundMessage, OutboundMessage, StaffEvent


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    channel: str
    headers: dict[str, str]  # lower-cased names
    query: dict[str, str]
    body: bytes
    source_ip: str | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @classmethod
    def from_api_gateway(cls, event: dict[str, Any]) -> WebhookRequest:
        """The request in an HTTP API (payload format 2.0) event for one of ingest's routes.

        API Gateway has already matched the route: ``/webhooks/{channel}``, or Mango Office's
        ``/webhooks/call/events/{kind}`` (it appends the event kind to the URL it is given).
        """
        http = event["requestContext"]["http"]
        path = event.get("pathParameters") or {}
        query = dict(event.get("queryStringParameters") or {})
        channel = path.get("channel", "")
        if "kind" in path:
            channel, query["provider"] = "call", f"mango/events/{path['kind']}"
        raw = event.get("body") or ""
        return cls(
            method=http["method"],
            channel=channel,
            headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
            query=query,
            body=base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8"),
            source_ip=http.get("sourceIp"),
        )


@dataclass
class WebhookResult:
    status: int = 200
    body: str = "ok"
    content_type: str = "text/plain; charset=utf-8"
    messages: list[InboundMessage] = field(default_factory=list)
    staff_events: list[StaffEvent] = field(default_factory=list)
    crm_events: list[CrmEvent] = field(default_factory=list)
    note: str | None = None  # log-safe: why nothing was taken ("edited message", "status update")
    # Telegram: the update is staff traffic if its chat is a staff member's, else a client's
    # message; ``messages`` and ``staff_events`` hold both readings and ingest keeps one.
    chat_decides: bool = False


class WebhookError(Exception):
    """A request we refuse. ``reason`` goes to the log, so it never holds personal data."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


def require_secret(expected: str | None, given: str | None, what: str) -> None:
    """Constant-time comparison; an unset secret refuses everything (fail closed)."""
    if not expected:
        raise WebhookError(403, f"{what} is not configured: channel refuses all requests")
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise WebhookError(403, f"{what} does not match")


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None = None
    segments: int | None = None
    cost: float | None = None


class SendError(Exception):
    """A send that did not happen. ``retryable`` failures are retried later; others are reported."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class UnknownOutcome(SendError):
    """The request went out and no answer came back: the message may have been delivered.

    Never retried blindly: the messenger asks the provider where it can (``confirm``), and
    otherwise counts the message as sent — a possible gap beats a double message."""

    def __init__(self, reason: str):
        super().__init__(reason, retryable=False)


class Sender:
    """Sends one outbound message through a channel's API."""

    channel: str = ""

    def send(self, message: OutboundMessage) -> SendResult:  # pragma: no cover - interface
        raise NotImplementedError
