"""A fake ManyChat Sending API: ``POST /fb/sending/sendContent`` as ManyChat answers it.

Requests carry ``Authorization: Bearer <token>`` and ``{"subscriber_id", "data": {"version": "v2",
"content": {"type"?, "messages": [...]}}, "message_tag"?}``. Success is ``{"status": "success"}``;
errors are ``{"status": "error", "message": …[, "details": …]}`` with HTTP 400 (a validation error,
a message tag, a subscriber whose last interaction was over 24 hours ago, an unknown subscriber),
401 (a wrong token) or 429. Test controls: ``subscribers`` (who exists, with their messenger),
``close_window(id)``, ``fail_next(status, message)``.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import FakeServer, Request, Response

CHANNELS = (None, "instagram", "whatsapp", "telegram")  # None: Facebook Messenger


@dataclass
class ManyChatSent:
    subscriber_id: int
    channel: str | None
    texts: list[str]
    body: dict[str, Any] = field(default_factory=dict)


def _error(status: int, message: str, details: Any = None) -> Response:
    body: dict[str, Any] = {"status": "error", "message": message}
    if details is not None:
        body["details"] = details
    return Response(status, body)


class FakeManyChat:
    def __init__(self, token: str = "1234567:abcdef0123456789abcdef0123456789"):  # noqa: S107 - a fake's token
        self.token = token
        self.subscribers: dict[int, str | None] = {}  # id → the messenger they write from
        self.closed: set[int] = set()
        self.sent: list[ManyChatSent] = []
        self._faults: deque[Response] = deque()
        self._lock = threading.Lock()
        self.server = FakeServer(self.route)

    @property
    def url(self) -> str:
        return self.server.url

    def subscriber(self, subscriber_id: int, channel: str | None = None) -> None:
        self.subscribers[subscriber_id] = channel

    def close_window(self, subscriber_id: int) -> None:
        self.closed.add(subscriber_id)

    def fail_next(self, status: int, message: str) -> None:
        self._faults.append(_error(status, message))

    def __enter__(self) -> FakeManyChat:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    def route(self, request: Request) -> Response:
        if request.path != "/fb/sending/sendContent" or request.method != "POST":
            return _error(404, "Not found")
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "Wrong format token")
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        try:
            body = request.json()
        except ValueError:
            return _error(400, "Validation error", {"messages": [{"message": "Invalid JSON"}]})
        if not isinstance(body, dict):
            return _error(400, "Validation error")
        if "message_tag" in body:
            return _error(
                400, "Validation error", {"messages": [{"message": "Message tags are no longer supported"}]}
            )
        subscriber = body.get("subscriber_id")
        if not isinstance(subscriber, int):
            return _error(
                400,
                "Validation error",
                {"messages": {"subscriber_id": ["The subscriber id must be an integer."]}},
            )
        data = body.get("data") or {}
        content = data.get("content") or {}
        messages = content.get("messages")
        if data.get("version") != "v2" or not isinstance(messages, list) or not messages:
            return _error(400, "Validation error", {"messages": [{"message": "Content is invalid"}]})
        if len(messages) > 10:
            return _error(400, "Validation error", {"messages": [{"message": "Too many messages (max 10)"}]})
        channel = content.get("type")
        if channel not in CHANNELS:
            return _error(400, "Validation error", {"messages": [{"message": f"Unsupported type {channel}"}]})
        texts = [m.get("text") for m in messages if isinstance(m, dict) and m.get("type") == "text"]
        if len(texts) != len(messages) or not all(isinstance(t, str) and t for t in texts):
            return _error(400, "Validation error", {"messages": [{"message": "Text is required"}]})
        if subscriber not in self.subscribers:
            return _error(400, "Subscriber does not exist")
        if self.subscribers[subscriber] != channel:
            return _error(400, "Subscriber is not reachable in this channel")
        if subscriber in self.closed:
            return _error(
                400,
                "Content can't be sent to subscriber without message tag. Subscriber's last interaction was over 24h ago.",
            )
        with self._lock:
            self.sent.append(ManyChatSent(subscriber, channel, list(texts), body))  # type: ignore[arg-type]
        return Response(200, {"status": "success"})
