"""ManyChat: a reply to a builder's subscriber through ManyChat's Sending API, in the chat the
subscriber wrote from (Instagram, WhatsApp, Telegram or Facebook Messenger).

``POST {base}/fb/sending/sendContent`` with ``Authorization: Bearer <MANYCHAT_API_TOKEN>`` and
``{"subscriber_id": <id>, "data": {"version": "v2", "content": {"type": <channel>, "messages":
[{"type": "text", "text": …}]}}}`` — ``type`` names the messenger ("instagram", "whatsapp",
"telegram"), absent for Facebook Messenger; at most ten messages. No ``message_tag``: the public API
refuses tags, and a reply goes within the 24 hours of the subscriber's own message. ManyChat answers
``{"status": "success"}``, or ``{"status": "error", "message": …}`` — "over 24h ago", an unknown
subscriber or a refused token will not get better by trying again (the caller texts the client
instead); a 429 or a 5xx may.

The recipient (``OutboundMessage.to``) is ``BuilderRef.address()``: ``[<channel>:]<subscriber id>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leadflow.adapters.channels.base import Sender, SendError, SendResult
from leadflow.adapters.channels.toolkit import post, split_text, utf8_len
from leadflow.domain.models import Builder, OutboundMessage

if TYPE_CHECKING:
    import requests

DEFAULT_API_BASE = "https://api.manychat.com"
MAX_MESSAGES = 10
MAX_TEXT = 2000  # Messenger's text limit
MAX_INSTAGRAM_BYTES = 1000  # Instagram's: "less than 1000 bytes"
CHANNELS = frozenset({"instagram", "whatsapp", "telegram"})


class ManyChatSender(Sender):
    channel = Builder.manychat.value

    def __init__(
        self,
        token: str,
        session: requests.Session | None = None,
        base_url: str = DEFAULT_API_BASE,
        *,
        timeout_s: float = 10.0,
    ):
        if session is None:
            import requests

            session = requests.Session()
        self._token = token
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"ManyChatSender(base_url={self.base_url!r})"

    def send(self, message: OutboundMessage) -> SendResult:
        channel, _, subscriber = message.to.rpartition(":")
        if channel and channel not in CHANNELS:
            raise SendError(f"manychat: unknown messenger {channel[:20]!r}", retryable=False)
        if not subscriber:
            raise SendError("manychat: no subscriber id", retryable=False)
        if channel == "instagram":
            parts = split_text(message.text, MAX_INSTAGRAM_BYTES, utf8_len)
        else:
            parts = split_text(message.text, MAX_TEXT)
        if not parts:
            raise SendError("manychat: empty text", retryable=False)
        if len(parts) > MAX_MESSAGES:
            parts = [*parts[: MAX_MESSAGES - 1], parts[MAX_MESSAGES - 1] + "…"]
        content: dict[str, Any] = {
            "messages": [{"type": "text", "text": part} for part in parts[:MAX_MESSAGES]]
        }
        if channel:
            content["type"] = channel
        body = {
            "subscriber_id": int(subscriber) if subscriber.isdigit() else subscriber,
            "data": {"version": "v2", "content": content},
        }
        response = post(
            self._session,
            f"{self.base_url}/fb/sending/sendContent",
            what="manychat sendContent",
            timeout=self._timeout_s,
            json=body,
            headers={"Authorization": f"Bearer {self._token}"},
        )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code < 300 and isinstance(answer, dict) and answer.get("status") == "success":
            return SendResult(segments=len(content["messages"]))
        raise manychat_error(response.status_code, answer, response.headers.get("Retry-After"))


def manychat_error(status: int, answer: Any, retry_after: str | None = None) -> SendError:
    message = str(answer.get("message") or "") if isinstance(answer, dict) else ""
    reason = f"manychat sendContent: HTTP {status}" + (f": {_masked(message)[:200]}" if message else "")
    if status == 429 or status >= 500:
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        return SendError(reason, retryable=True, retry_after=wait)
    return SendError(reason, retryable=False)


def _masked(text: str) -> str:
    from leadflow.adapters.channels.meta import mask_digits

    return mask_digits(text)
