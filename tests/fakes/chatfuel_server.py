"""A fake Chatfuel Broadcasting API: ``POST /bots/<bot id>/users/<user id>/send``.

Parameters come in the query or the JSON body: ``chatfuel_token``, exactly one of
``chatfuel_block_name`` / ``chatfuel_block_id`` / ``chatfuel_flow_name``, ``chatfuel_message_tag``
(optional) and any other key as a user attribute. Answers ``{"success": true, "result": "..."}`` or
``{"success": false, "result": <why>}`` (HTTP 400/401/404, 429 above 25 requests a second — here
on demand with ``fail_next``).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass, field

from tests.fakes.http import FakeServer, Request, Response

PATH = re.compile(r"^/bots/([^/]+)/users/([^/]+)/send$")
ROUTING = ("chatfuel_block_name", "chatfuel_block_id", "chatfuel_flow_name")


@dataclass
class ChatfuelSent:
    bot_id: str
    user_id: str
    block: str
    attributes: dict[str, str] = field(default_factory=dict)
    in_query: list[str] = field(default_factory=list)  # parameter names that came in the URL


def _no(status: int, why: str) -> Response:
    return Response(status, {"success": False, "result": why})


class FakeChatfuel:
    def __init__(self, token: str = "cf-broadcast-token-0123456789", bot_id: str = "5f0c0ffee0ddba11"):  # noqa: S107
        self.token = token
        self.bot_id = bot_id
        self.blocks = {"leadflow_reply"}
        self.users: set[str] = set()
        self.sent: list[ChatfuelSent] = []
        self._faults: deque[Response] = deque()
        self._lock = threading.Lock()
        self.server = FakeServer(self.route)

    @property
    def url(self) -> str:
        return self.server.url

    def fail_next(self, status: int, why: str) -> None:
        self._faults.append(_no(status, why))

    def __enter__(self) -> FakeChatfuel:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    def route(self, request: Request) -> Response:
        match = PATH.match(request.path)
        if request.method != "POST" or match is None:
            return _no(404, "Not found")
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return _no(400, "Invalid JSON")
        params = {**request.query, **(body if isinstance(body, dict) else {})}
        if params.get("chatfuel_token") != self.token:
            return _no(401, "Invalid token")
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        bot_id, user_id = match.groups()
        if bot_id != self.bot_id:
            return _no(404, "Bot not found")
        routing = [key for key in ROUTING if params.get(key)]
        if len(routing) != 1:
            return _no(
                400, "Exactly one of chatfuel_block_id, chatfuel_block_name, chatfuel_flow_name is required"
            )
        block = str(params[routing[0]])
        if routing[0] == "chatfuel_block_name" and block not in self.blocks:
            return _no(400, f"Block {block} not found")
        if user_id not in self.users:
            return _no(400, "User not found")
        attributes = {k: str(v) for k, v in params.items() if not k.startswith("chatfuel_")}
        with self._lock:
            self.sent.append(ChatfuelSent(bot_id, user_id, block, attributes, sorted(request.query)))
        return Response(200, {"success": True, "result": "Message sent"})
