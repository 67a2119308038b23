"""Chatfuel: a reply to a bot's user through Chatfuel's Broadcasting API.

``POST {base}/bots/<CHATFUEL_BOT_ID>/users/<messenger user id>/send`` with the parameters in the
JSON body (Chatfuel takes them "either in the body or the URL": the body keeps the token out of
every URL): ``chatfuel_token``, ``chatfuel_block_name`` and the reply as the user attribute
``leadflow_reply``. Chatfuel sends blocks, not free text, so the bot needs one block (its name in
CHATFUEL_BLOCK, ``leadflow_reply`` by default) whose text card shows ``{{leadflow_reply}}``.

Chatfuel answers ``{"success": true, "result": …}`` or ``{"success": false, "result": <why>}``: a
refusal will not get better by trying again (the caller texts the client instead); a 429 or a 5xx
may. At most 25 requests a second per bot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from leadflow.adapters.channels.base import Sender, SendError, SendResult
from leadflow.adapters.channels.toolkit import post, prefix_within
from leadflow.domain.models import Builder, OutboundMessage

if TYPE_CHECKING:
    import requests

DEFAULT_API_BASE = "https://api.chatfuel.com"
DEFAULT_BLOCK = "leadflow_reply"
REPLY_ATTRIBUTE = "leadflow_reply"
MAX_TEXT = 2000  # a Messenger text card


class ChatfuelSender(Sender):
    channel = Builder.chatfuel.value

    def __init__(
        self,
        token: str,
        bot_id: str,
        session: requests.Session | None = None,
        base_url: str = DEFAULT_API_BASE,
        *,
        block: str = DEFAULT_BLOCK,
        timeout_s: float = 10.0,
    ):
        if session is None:
            import requests

            session = requests.Session()
        self._token = token
        self.bot_id = bot_id
        self.block = block
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"ChatfuelSender(base_url={self.base_url!r}, bot_id={self.bot_id!r})"

    def send(self, message: OutboundMessage) -> SendResult:
        text = message.text.strip()
        if not text:
            raise SendError("chatfuel: empty text", retryable=False)
        user = message.to.rpartition(":")[2]
        if not user:
            raise SendError("chatfuel: no user id", retryable=False)
        body = {
            "chatfuel_token": self._token,
            "chatfuel_block_name": self.block,
            REPLY_ATTRIBUTE: prefix_within(text, MAX_TEXT) if len(text) > MAX_TEXT else text,
        }
        response = post(
            self._session,
            f"{self.base_url}/bots/{quote(self.bot_id, safe='')}/users/{quote(user, safe='')}/send",
            what="chatfuel broadcast",
            timeout=self._timeout_s,
            json=body,
        )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code < 300 and isinstance(answer, dict) and answer.get("success") is True:
            return SendResult(segments=1)
        raise chatfuel_error(response.status_code, answer)


def chatfuel_error(status: int, answer: Any) -> SendError:
    from leadflow.adapters.channels.meta import mask_digits

    why = str(answer.get("result") or "") if isinstance(answer, dict) else ""
    reason = f"chatfuel broadcast: HTTP {status}" + (f": {mask_digits(why)[:200]}" if why else "")
    return SendError(reason, retryable=status == 429 or status >= 500)
