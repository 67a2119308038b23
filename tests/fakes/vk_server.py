"""A fake VK API: ``POST /method/messages.send`` as VK answers it, and the community's Callback API
settings (``groups.getCallbackServers``, ``groups.getCallbackSettings``).

Success is ``{"response": …}``. Errors come, as from VK, with HTTP 200 and
``{"error": {"error_code", "error_msg", "request_params": [{"key","value"}…]}}``. A repeated
``random_id`` to the same peer is not sent again: VK answers with the first message's id.
Test controls: ``deny_messages(peer)`` (901), ``fail_next(code, msg)``, ``fail_next_http(status)``,
``delay_next(seconds)`` and ``add_callback_server(url, secret_key, status, events)``. A callback server
is VK-SCHEMA's ``groups_callback_server`` (id, title, creator_id, url, secret_key, status ∈
unconfigured | failed | wait | ok); its settings are ``{api_version, events: {message_new: 0|1, …}}``.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from tests.fakes.http import FakeServer, Request, Response

MAX_TEXT = 4096


@dataclass
class VkSent:
    peer_id: int
    text: str
    random_id: int
    message_id: int


class FakeVkApi:
    """``with FakeVkApi(token=…) as vk:`` → ``vk.base_url`` (``…/method``) to hand to ``VkSender``."""

    def __init__(self, token: str = "vk1.a.test-community-token", group_id: int = 218734561):  # noqa: S107
        self.token = token
        self.group_id = group_id
        self.callback_servers: list[dict[str, Any]] = []
        self.callback_events: dict[int, dict[str, int]] = {}
        self.sent: list[VkSent] = []
        self.denied: set[int] = set()
        self._by_random_id: dict[tuple[int, int], int] = {}
        self._faults: deque[tuple[str, Response]] = deque()
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        self.server = FakeServer(self.route)

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/method"

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    def deny_messages(self, peer_id: int) -> None:
        """The user has not allowed the community to message them."""
        self.denied.add(peer_id)

    def fail_next(self, error_code: int, error_msg: str, times: int = 1) -> None:
        for _ in range(times):
            self._faults.append(
                ("api_error", Response(200, {"error_code": error_code, "error_msg": error_msg}))
            )

    def fail_next_http(self, status: int, body: bytes | str | dict = b"", times: int = 1) -> None:
        for _ in range(times):
            self._faults.append(("http", Response(status, body)))

    def delay_next(self, seconds: float) -> None:
        self._faults.append(("delay", Response(delay_s=seconds)))

    def add_callback_server(
        self, url: str, secret_key: str, status: str = "ok", events: dict[str, int] | None = None
    ) -> int:
        server_id = len(self.callback_servers) + 1
        self.callback_servers.append({"id": server_id, "title": "leadflow", "creator_id": 1001, "url": url,
                                      "secret_key": secret_key, "status": status})  # fmt: skip
        self.callback_events[server_id] = {
            "message_new": 1,
            "message_reply": 0,
            "group_join": 0,
            **(events or {}),
        }
        return server_id

    def __enter__(self) -> FakeVkApi:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    # ----------------------------------------------------------------- the API

    def route(self, request: Request) -> Response:
        params = {**request.query, **(request.form() if request.body else {})}
        method = request.path.removeprefix("/method/")
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        delay = 0.0
        if fault is not None:
            kind, canned = fault
            if kind == "http":
                return canned
            if kind == "api_error":
                assert isinstance(canned.body, dict)
                return self._error(method, params, canned.body["error_code"], canned.body["error_msg"])
            delay = canned.delay_s
        response = self._answer(method, params)
        response.delay_s = delay
        return response

    def _answer(self, method: str, params: dict[str, str]) -> Response:
        if params.get("access_token") != self.token:
            return self._error(method, params, 5, "User authorization failed: invalid access_token (4).")
        if not params.get("v"):
            return self._error(method, params, 8, "Invalid request: v (version) is required")
        if method in ("groups.getCallbackServers", "groups.getCallbackSettings"):
            return self._callback_api(method, params)
        if method != "messages.send":
            return self._error(method, params, 3, "Unknown method passed.")
        try:
            peer_id = int(params["peer_id"])
        except (KeyError, ValueError):
            return self._error(
                method, params, 100, "One of the parameters specified was missing or invalid: peer_id"
            )
        if "random_id" not in params:
            return self._error(
                method,
                params,
                100,
                "One of the parameters specified was missing or invalid: random_id is required",
            )
        random_id = int(params["random_id"])
        text = params.get("message", "")
        if not text:
            return self._error(
                method, params, 100, "One of the parameters specified was missing or invalid: message"
            )
        if len(text) > MAX_TEXT:
            return self._error(method, params, 914, "Message is too long")
        if peer_id in self.denied:
            return self._error(method, params, 901, "Can't send messages for users without permission")
        with self._lock:
            known = self._by_random_id.get((peer_id, random_id)) if random_id else None
            if known is not None:
                return Response(200, {"response": known})
            message_id = next(self._ids)
            self._by_random_id[(peer_id, random_id)] = message_id
            self.sent.append(VkSent(peer_id, text, random_id, message_id))
        return Response(200, {"response": message_id})

    def _callback_api(self, method: str, params: dict[str, str]) -> Response:
        group = params.get("group_id", "")
        if not group.isdigit():
            return self._error(
                method,
                params,
                100,
                "One of the parameters specified was missing or invalid: group_id is undefined",
            )
        if int(group) != self.group_id:  # a community key acts for its own community only
            return self._error(method, params, 15, "Access denied: no access to call this method")
        if method == "groups.getCallbackServers":
            items = [dict(server) for server in self.callback_servers]
            return Response(200, {"response": {"count": len(items), "items": items}})
        server_id = int(params.get("server_id") or 0)
        if server_id not in self.callback_events:
            return self._error(
                method, params, 100, "One of the parameters specified was missing or invalid: server_id"
            )
        return Response(
            200, {"response": {"api_version": "5.199", "events": dict(self.callback_events[server_id])}}
        )

    @staticmethod
    def _error(method: str, params: dict[str, str], code: int, message: str) -> Response:
        # VK echoes the request without the token; the text and peer are in it (why clients must not log it).
        echoed: list[dict[str, Any]] = [{"key": "method", "value": method}, {"key": "oauth", "value": "1"}]
        echoed += [{"key": k, "value": v} for k, v in params.items() if k != "access_token"]
        return Response(200, {"error": {"error_code": code, "error_msg": message, "request_params": echoed}})
