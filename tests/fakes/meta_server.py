"""A fake Graph API for the WhatsApp Cloud API and Instagram send endpoints.

Routes: ``POST /{version}/{phone_number_id}/messages`` (WhatsApp), ``POST /{version}/me/messages``
(Instagram), and a client's media: ``GET /{version}/{media_id}`` answers its short-lived ``url``
(``{"messaging_product","url","mime_type","sha256","file_size","id"}``, ``file_size`` a string as
Meta documents it) and that URL serves the bytes, both only with the bearer token. Success bodies, error bodies and status codes follow Meta's documentation:

- WhatsApp: ``{"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],"messages":[{"id":"wamid…"}]}``
- Instagram: ``{"recipient_id": …, "message_id": …}``
- errors: HTTP 4xx/5xx with ``{"error": {"message","type","code","error_subcode","fbtrace_id"}}``

Reading (GET, the calls ``leadflow doctor`` makes): ``/{version}/me`` (the token's user),
``/{version}/app`` (the token's app), ``/{version}/{phone_number_id}?fields=…`` (the number's
display_phone_number, verified_name, quality_rating, code_verification_status) and
``/{version}/{app_id}/subscriptions`` with the app's own token ``{app_id}|{app_secret}``:
``{"data": [{"object", "callback_url", "active", "fields": [{"name", "version"}]}]}``.

State a test can set: a per-recipient 24-hour window (``close_window``), approved templates,
the app's webhooks (``subscribe``), the status a refused token gets (``auth_error_status``: Meta
answers code 190 mostly with 400, some report 401), and injected faults (``fail_next`` with a Graph
error, ``fail_next_http`` with any answer, ``delay_next`` for a timeout).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import FakeServer, Request, Response

WHATSAPP_PATH = re.compile(r"^/(v\d+\.\d+)/([0-9]+)/messages$")
READ_PATH = re.compile(r"^/(v\d+\.\d+)/([A-Za-z0-9_]+)(?:/(subscriptions))?$")
INSTAGRAM_PATH = re.compile(r"^/(v\d+\.\d+)/me/messages$")
MEDIA_PATH = re.compile(r"^/(v\d+\.\d+)/([0-9]+)$")
DOWNLOAD_PATH = "/whatsapp_business/attachments/"

WHATSAPP_MAX_TEXT = 4096
INSTAGRAM_MAX_TEXT_BYTES = 1000


@dataclass
class SentMessage:
    channel: str  # "whatsapp" | "instagram"
    phone_number_id: str | None
    to: str
    kind: str  # "text" | "template"
    text: str
    message_id: str
    payload: dict[str, Any] = field(default_factory=dict)


def graph_error(
    code: int, message: str, *, type_: str = "OAuthException", subcode: int | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": type_, "code": code, "fbtrace_id": _trace_id()}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def _trace_id() -> str:
    return "A" + secrets.token_urlsafe(15).replace("-", "x").replace("_", "y")


class FakeGraphApi:
    """``with FakeGraphApi(token=…) as graph:`` → ``graph.base_url`` to hand to a sender."""

    def __init__(
        self,
        token: str = "EAAG-test-token",  # noqa: S107 - a fake's token
        phone_number_ids: tuple[str, ...] = ("106540352242922",),
        version: str = "v21.0",
        templates: tuple[str, ...] = ("appointment_reminder", "hello_world"),
    ):
        self.token = token
        self.phone_number_ids = set(phone_number_ids)
        self.version = version
        self.templates = set(templates)
        self.app_id = "1234567890123456"
        self.app_secret = "fake-app-secret-0123456789abcdef"
        self.auth_error_status = 401
        self.phone_numbers = {
            number_id: {"display_phone_number": "+7 495 123-45-67", "verified_name": "Салон Лотос",
                        "quality_rating": "GREEN", "code_verification_status": "VERIFIED"}
            for number_id in phone_number_ids
        }  # fmt: skip
        self.subscriptions: list[dict[str, Any]] = []
        self.sent: list[SentMessage] = []
        self.closed_windows: set[str] = set()
        self.media: dict[str, tuple[bytes, str, int]] = {}  # media id → (bytes, mime type, file_size)
        self.expired_downloads = 0  # the next this many downloads answer 404 (the URL expired)
        self._faults: deque[tuple[str, Response]] = deque()
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self.server = FakeServer(self.route)

    # ----------------------------------------------------------------- test controls

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/{self.version}"

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    def add_media(self, media_id: str, data: bytes, mime_type: str, *, size: int | None = None) -> None:
        """A file a client sent: its id arrives in the webhook. ``size`` may claim more than ``data``
        holds (a 60 MB video, without making one)."""
        self.media[media_id] = (data, mime_type, len(data) if size is None else size)

    def close_window(self, recipient: str) -> None:
        """The client last wrote more than 24 hours ago: free text to them is refused."""
        self.closed_windows.add(recipient)

    def fail_next(
        self,
        code: int,
        message: str,
        *,
        status: int = 400,
        subcode: int | None = None,
        type_: str = "OAuthException",
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        for _ in range(times):
            error = graph_error(code, message, type_=type_, subcode=subcode)
            self._faults.append(("answer", Response(status, error, dict(headers or {}))))

    def subscribe(self, object_: str, callback_url: str, *, fields: tuple[str, ...] = ("messages",),
                  active: bool = True) -> None:  # fmt: skip
        """The app's webhook for ``object_`` (whatsapp_business_account, instagram, page)."""
        self.subscriptions = [s for s in self.subscriptions if s["object"] != object_]
        self.subscriptions.append({"object": object_, "callback_url": callback_url, "active": active,
                                   "fields": [{"name": f, "version": self.version} for f in fields]})  # fmt: skip

    def fail_next_http(self, status: int, body: bytes | str | dict = b"", times: int = 1) -> None:
        for _ in range(times):
            self._faults.append(("answer", Response(status, body)))

    def delay_next(self, seconds: float) -> None:
        """The next request is answered (successfully) only after ``seconds``: a client timeout."""
        self._faults.append(("delay", Response(delay_s=seconds)))

    def __enter__(self) -> FakeGraphApi:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    # ----------------------------------------------------------------- the API

    def route(self, request: Request) -> Response:
        media = request.method == "GET" and (
            request.path == DOWNLOAD_PATH
            or (
                (match := MEDIA_PATH.match(request.path)) is not None
                and match.group(2) not in self.phone_numbers
            )
        )
        if request.method == "GET" and not media:
            return self._read(request)
        if request.method not in ("GET", "POST"):
            return Response(400, graph_error(100, "Unsupported request.", type_="GraphMethodException"))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Response(
                401, graph_error(190, "Invalid OAuth access token - Cannot parse access token", subcode=None)
            )
        if request.method == "GET" and request.path == DOWNLOAD_PATH:
            return self._download(request.query.get("mid", ""))
        if request.method == "GET" and (match := MEDIA_PATH.match(request.path)):
            return self._media_url(match.group(2))
        delay = 0.0
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            kind, canned = fault
            if kind == "answer":
                return canned
            delay = canned.delay_s
        try:
            body = request.json()
        except ValueError:
            return Response(400, graph_error(100, "(#100) Invalid JSON"))
        if not isinstance(body, dict):
            return Response(400, graph_error(100, "(#100) Invalid parameter"))
        if match := WHATSAPP_PATH.match(request.path):
            response = self._whatsapp(match.group(2), body)
        elif INSTAGRAM_PATH.match(request.path):
            response = self._instagram(body)
        else:
            response = Response(
                400,
                graph_error(
                    100,
                    "Unsupported post request. Object does not exist",
                    type_="GraphMethodException",
                    subcode=33,
                ),
            )
        response.delay_s = delay
        return response

    def _read(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        token = (
            auth.removeprefix("Bearer ")
            if auth.startswith("Bearer ")
            else request.query.get("access_token", "")
        )
        match = READ_PATH.match(request.path)
        node, edge = (match.group(2), match.group(3)) if match else ("", None)
        if edge == "subscriptions":
            if node != self.app_id:
                return self._no_object(node)
            if token != f"{self.app_id}|{self.app_secret}":  # "Requires an app access token"
                return Response(400, graph_error(190, "Invalid OAuth access token signature."))
            return Response(200, {"data": [dict(s) for s in self.subscriptions]})
        if token != self.token:
            return Response(self.auth_error_status,
                            graph_error(190, "Invalid OAuth access token - Cannot parse access token"))  # fmt: skip
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None and fault[0] == "answer":
            return fault[1]
        if node == "me":
            return Response(200, {"id": "122100000000000001", "name": "leadflow system user"})
        if node == "app":
            return Response(
                200,
                {
                    "id": self.app_id,
                    "name": "Lotos leads",
                    "link": "https://www.facebook.com/games/?app_id=" + self.app_id,
                },
            )
        if node in self.phone_numbers and edge is None:
            wanted = [f for f in request.query.get("fields", "").split(",") if f]
            info = self.phone_numbers[node]
            return Response(200, {**{k: v for k, v in info.items() if not wanted or k in wanted}, "id": node})
        return self._no_object(node)

    @staticmethod
    def _no_object(node: str) -> Response:
        message = (f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded due to "
                   "missing permissions, or does not support this operation.")  # fmt: skip
        return Response(400, graph_error(100, message, type_="GraphMethodException", subcode=33))

    def _whatsapp(self, phone_number_id: str, body: dict[str, Any]) -> Response:
        if phone_number_id not in self.phone_number_ids:
            return Response(
                400,
                graph_error(
                    100,
                    f"Unsupported post request. Object with ID '{phone_number_id}' does not exist",
                    type_="GraphMethodException",
                    subcode=33,
                ),
            )
        if body.get("messaging_product") != "whatsapp":
            return Response(400, graph_error(100, "(#100) The parameter messaging_product is required."))
        to = body.get("to") or body.get("recipient")
        if not isinstance(to, str) or not to:
            return Response(400, graph_error(100, "(#100) The parameter to is required."))
        kind = body.get("type", "text")
        if kind == "text":
            text = (body.get("text") or {}).get("body")
            if not isinstance(text, str) or not text:
                return Response(400, graph_error(100, "(#100) The parameter text['body'] is required."))
            if len(text) > WHATSAPP_MAX_TEXT:
                return Response(
                    400, graph_error(100, "(#100) Param text['body'] must be at most 4096 characters long.")
                )
            if to in self.closed_windows:
                return Response(
                    400,
                    graph_error(
                        131047,
                        "(#131047) Re-engagement message: More than 24 hours have passed since the recipient "
                        "last replied to the sender number.",
                    ),
                )
        elif kind == "template":
            template = body.get("template") or {}
            language = (template.get("language") or {}).get("code")
            if not template.get("name") or not language:
                return Response(
                    400, graph_error(100, "(#100) The parameter template['language'] is required.")
                )
            if template["name"] not in self.templates:
                return Response(
                    404,
                    graph_error(
                        132001,
                        "(#132001) Template name does not exist in the translation: "
                        f"{template['name']} ({language})",
                    ),
                )
            text = f"template:{template['name']}"
        else:
            return Response(400, graph_error(131051, "(#131051) Unsupported message type"))
        wamid = "wamid." + base64.b64encode(f"leadflow-test-{next(self._counter):08d}".encode()).decode()
        with self._lock:
            self.sent.append(SentMessage("whatsapp", phone_number_id, to, kind, text, wamid, body))
        contact = {"input": to, "user_id": to} if "recipient" in body else {"input": to, "wa_id": to}
        return Response(
            200, {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": wamid}]}
        )

    def _media_url(self, media_id: str) -> Response:
        if media_id not in self.media:
            return Response(
                400,
                graph_error(
                    100,
                    f"Unsupported get request. Object with ID '{media_id}' does not exist, cannot be loaded "
                    "due to missing permissions, or does not support this operation.",
                    type_="GraphMethodException",
                    subcode=33,
                ),
            )
        data, mime, size = self.media[media_id]
        return Response(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{self.server.url}{DOWNLOAD_PATH}?mid={media_id}&ext=1&hash=ATu",
                "mime_type": mime,
                "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
                "file_size": str(size),
                "id": media_id,
            },
        )

    def _download(self, media_id: str) -> Response:
        with self._lock:
            expired = self.expired_downloads > 0
            self.expired_downloads -= expired
        if expired or media_id not in self.media:
            return Response(404, b"")
        data, mime, _ = self.media[media_id]
        return Response(200, data, headers={"Content-Type": mime})

    def _instagram(self, body: dict[str, Any]) -> Response:
        recipient = (body.get("recipient") or {}).get("id")
        if not recipient:
            return Response(400, graph_error(100, "(#100) param recipient must be non-empty."))
        text = (body.get("message") or {}).get("text")
        if not isinstance(text, str) or not text:
            return Response(400, graph_error(100, "(#100) param message must be non-empty."))
        if len(text.encode("utf-8")) > INSTAGRAM_MAX_TEXT_BYTES:
            return Response(
                400,
                graph_error(100, "(#100) Length of param message[text] must be less than or equal to 1000"),
            )
        if recipient in self.closed_windows:
            return Response(
                400, graph_error(10, "(#10) This message is sent outside of allowed window.", subcode=2018278)
            )
        mid = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx" + f"{next(self._counter):010d}"
        with self._lock:
            self.sent.append(SentMessage("instagram", None, recipient, "text", text, mid, body))
        return Response(200, {"recipient_id": recipient, "message_id": mid})
