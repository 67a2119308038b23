"""A fake Telegram Bot API on a loopback socket: ``/bot<token>/<method>`` as the real one answers it.

Supported methods: sendMessage, editMessageText, answerCallbackQuery, setWebhook, getWebhookInfo,
getMe, getFile (and the file download ``/file/bot<token>/<file_path>``), copyMessage, and the uploads
sendPhoto, sendVoice, sendVideo, sendAudio, sendDocument (multipart/form-data). Bodies may be JSON,
form-encoded or multipart (nested objects as JSON strings, as Telegram accepts them) or query
parameters. Answers use the documented envelope: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}``.

Faults are queued with ``fail_next`` and served before the real handling, in order. The per-chat
flood limit (``per_chat_limit = True``) answers 429 to a second message to the same chat within
``per_chat_interval_s``, like Telegram's "no more than one message per second in a chat".
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from tests.fakes.http import FakeServer, Request, Response

DEFAULT_TOKEN = "7012345678:AAFk3v9Qx2Lp8Rt5Wz1Yb4Nc6Md0Je7Hg3s"
MAX_BOT_DOWNLOAD = 20 * 1024 * 1024  # "bots can download files of up to 20MB in size"
MAX_PHOTO_UPLOAD = 10 * 1024 * 1024
UPLOADS = {"sendPhoto": "photo", "sendVoice": "voice", "sendVideo": "video", "sendAudio": "audio",
           "sendDocument": "document"}  # fmt: skip
MAX_TEXT = 4096
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


def error(code: int, description: str, **parameters: Any) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Response(status=code, body=body)


def ok(result: Any) -> Response:
    return Response(status=200, body={"ok": True, "result": result})


@dataclass
class Fault:
    kind: str  # rate_limit | chat_not_found | blocked | server_error | slow | html_502
    method: str | None = None  # None: any method
    retry_after: int = 3
    delay_s: float = 0.0


class FakeTelegram:
    """``with FakeTelegram() as tg: TelegramBot(tg.token, base_url=tg.url)``."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, bot_username: str = "salon_lotos_bot"):
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.per_chat_limit = False
        self.per_chat_interval_s = 1.0
        self.sent: dict[str, list[dict[str, Any]]] = defaultdict(list)  # chat id → messages, in order
        self.answered_callbacks: dict[str, str | None] = {}
        self.webhook: dict[str, Any] | None = None
        # What getWebhookInfo reports about deliveries (Telegram's own bookkeeping; tests set it).
        self.pending_update_count = 0
        self.last_error: tuple[int, str] | None = None  # (unix time, message)
        self.unreachable_chats: set[str] = set()
        self.files: dict[str, StoredFile] = {}  # file_id → what getFile and the download serve
        self.client_messages: set[tuple[str, int]] = set()  # (chat, message id) the bot may copy
        self.refuse_photos = False  # sendPhoto answers IMAGE_PROCESS_FAILED (the sender falls back)
        self._faults: list[Fault] = []
        self._last_sent_at: dict[str, float] = {}
        self._next_id: dict[str, int] = defaultdict(lambda: 100)
        self._lock = threading.Lock()
        self._server = FakeServer(self.route)

    # ---------------------------------------------------------------- test controls

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    def fail_next(self, kind: str, *, times: int = 1, method: str | None = None, **options: Any) -> None:
        with self._lock:
            self._faults.extend(Fault(kind, method, **options) for _ in range(times))

    def texts(self, chat_id: int | str) -> list[str]:
        return [m["text"] for m in self.sent[str(chat_id)] if "text" in m]

    def media(self, chat_id: int | str) -> list[dict[str, Any]]:
        """Copies and uploads in a chat, in order (``copied_from`` or ``method``/``file``/``caption``)."""
        return [m for m in self.sent[str(chat_id)] if "text" not in m]

    def add_file(self, file_id: str, data: bytes, file_path: str, *, size: int | None = None) -> None:
        """A file a client sent: ``size`` may claim more than ``data`` holds (a file over 20 MB)."""
        self.files[file_id] = StoredFile(data, file_path, len(data) if size is None else size)

    def client_message(self, chat_id: int | str, message_id: int) -> None:
        """A message in a client's chat with the bot: copyMessage takes it."""
        self.client_messages.add((str(chat_id), message_id))

    def __enter__(self) -> FakeTelegram:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    # ---------------------------------------------------------------- the API

    def route(self, request: Request) -> Response:
        if request.path.startswith("/file/"):
            return self._download(request.path.removeprefix("/file/"))
        prefix, _, rest = request.path.lstrip("/").partition("/")
        if not prefix.startswith("bot") or not rest:
            return error(404, "Not Found")
        if prefix[3:] != self.token:
            return error(401, "Unauthorized")
        method = rest
        params = _params(request)
        if params is None:
            return error(400, "Bad Request: can't parse JSON object")
        fault = self._take_fault(method)
        if fault is not None and fault.kind != "slow":
            return _fault_response(fault)
        handler = {
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "answerCallbackQuery": self._answer_callback_query,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getMe": self._get_me,
            "getFile": self._get_file,
            "copyMessage": self._copy_message,
            **{name: functools.partial(self._upload, name) for name in UPLOADS},
        }.get(method)
        if handler is None:
            return error(404, "Not Found")
        with self._lock:
            response = handler(params)
        if fault is not None:
            # Done for real but answered late: the client's timeout fires although the message exists.
            response.delay_s = fault.delay_s
        return response

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            fault = next((f for f in self._faults if f.method in (None, method)), None)
            if fault is not None:
                self._faults.remove(fault)
            return fault

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Лотос", "username": self.bot_username}

    def _send_message(self, params: dict[str, Any]) -> Response:
        chat_id = str(params.get("chat_id") or "")
        text = params.get("text")
        if not chat_id:
            return error(400, "Bad Request: chat_id is empty")
        if chat_id in self.unreachable_chats:
            return error(400, "Bad Request: chat not found")
        if not isinstance(text, str) or not text.strip():
            return error(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > MAX_TEXT:
            return error(400, "Bad Request: message is too long")
        markup_error = _check_markup(params.get("reply_markup"))
        if markup_error:
            return error(400, markup_error)
        reply = params.get("reply_parameters") or {}
        if "reply_to_message_id" in params:
            reply = {"message_id": params["reply_to_message_id"]}
        replied = None
        if reply:
            replied = next(
                (m for m in self.sent[chat_id] if m["message_id"] == int(reply["message_id"])), None
            )
            if replied is None and not reply.get("allow_sending_without_reply"):
                return error(400, "Bad Request: message to be replied not found")
        now = time.monotonic()
        if self.per_chat_limit:
            last = self._last_sent_at.get(chat_id)
            if last is not None and now - last < self.per_chat_interval_s:
                wait = max(1, math.ceil(self.per_chat_interval_s - (now - last)))
                return error(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        self._last_sent_at[chat_id] = now
        self._next_id[chat_id] += 1
        message: dict[str, Any] = {
            "message_id": self._next_id[chat_id],
            "from": self._bot_user(),
            "chat": {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id, "type": "private"},
            "date": int(time.time()),
            "text": text,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        if params.get("business_connection_id"):
            message["business_connection_id"] = params["business_connection_id"]
        if replied is not None:
            message["reply_to_message"] = {k: v for k, v in replied.items() if k != "reply_to_message"}
        if params.get("parse_mode"):
            message["parse_mode"] = params["parse_mode"]  # recorded for tests; not part of a real Message
        self.sent[chat_id].append(message)
        return ok(message)

    def _get_file(self, params: dict[str, Any]) -> Response:
        stored = self.files.get(str(params.get("file_id") or ""))
        if stored is None:
            return error(400, "Bad Request: invalid file_id")
        if stored.size > MAX_BOT_DOWNLOAD:
            return error(400, "Bad Request: file is too big")
        file_id = str(params["file_id"])
        return ok(
            {"file_id": file_id, "file_unique_id": f"u{len(file_id)}", "file_size": stored.size,
             "file_path": stored.file_path}
        )  # fmt: skip

    def _download(self, rest: str) -> Response:
        prefix, _, path = rest.partition("/")
        if prefix != f"bot{self.token}":
            return Response(status=401, body={"ok": False, "error_code": 401, "description": "Unauthorized"})
        stored = next((f for f in self.files.values() if f.file_path == path), None)
        if stored is None:
            return Response(status=404, body={"ok": False, "error_code": 404, "description": "Not Found"})
        return Response(status=200, body=stored.data)

    def _reply_error(self, chat_id: str, params: dict[str, Any]) -> str | None:
        reply = params.get("reply_parameters") or {}
        if not reply:
            return None
        found = any(m["message_id"] == int(reply["message_id"]) for m in self.sent[chat_id])
        if not found and not reply.get("allow_sending_without_reply"):
            return "Bad Request: message to be replied not found"
        return None

    def _copy_message(self, params: dict[str, Any]) -> Response:
        chat_id = str(params.get("chat_id") or "")
        source = (str(params.get("from_chat_id") or ""), int(params.get("message_id") or 0))
        if not chat_id:
            return error(400, "Bad Request: chat_id is empty")
        if chat_id in self.unreachable_chats:
            return error(400, "Bad Request: chat not found")
        if source not in self.client_messages:
            return error(400, "Bad Request: message to copy not found")
        problem = self._reply_error(chat_id, params)
        if problem:
            return error(400, problem)
        self._next_id[chat_id] += 1
        reply = params.get("reply_parameters") or {}
        self.sent[chat_id].append(
            {"message_id": self._next_id[chat_id], "copied_from": source,
             "reply_to": reply.get("message_id"), "caption": params.get("caption")}
        )  # fmt: skip
        return ok({"message_id": self._next_id[chat_id]})

    def _upload(self, method: str, params: dict[str, Any]) -> Response:
        chat_id = str(params.get("chat_id") or "")
        field = UPLOADS[method]
        upload = params.get("_files", {}).get(field)
        if not chat_id:
            return error(400, "Bad Request: chat_id is empty")
        if chat_id in self.unreachable_chats:
            return error(400, "Bad Request: chat not found")
        if upload is None:
            return error(400, f"Bad Request: there is no {field} in the request")
        if method == "sendPhoto" and (self.refuse_photos or len(upload.data) > MAX_PHOTO_UPLOAD):
            return error(400, "Bad Request: IMAGE_PROCESS_FAILED")
        caption = params.get("caption")
        if caption is not None and len(str(caption).encode("utf-16-le")) // 2 > 1024:
            return error(400, "Bad Request: message caption is too long")
        problem = self._reply_error(chat_id, params)
        if problem:
            return error(400, problem)
        self._next_id[chat_id] += 1
        reply = params.get("reply_parameters") or {}
        message = {
            "message_id": self._next_id[chat_id], "method": method, "file": upload.data,
            "file_name": upload.filename, "mime_type": upload.content_type, "caption": caption,
            "reply_to": reply.get("message_id"),
        }  # fmt: skip
        self.sent[chat_id].append(message)
        answer = {"message_id": message["message_id"], "chat": {"id": _int_or(chat_id), "type": "private"},
                  "date": int(time.time()), field: {"file_id": f"sent-{message['message_id']}"}}  # fmt: skip
        if caption:
            answer["caption"] = caption
        return ok(answer)

    def _edit_message_text(self, params: dict[str, Any]) -> Response:
        chat_id = str(params.get("chat_id") or "")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return error(400, "Bad Request: message text is empty")
        markup_error = _check_markup(params.get("reply_markup"))
        if markup_error:
            return error(400, markup_error)
        try:
            message_id = int(params.get("message_id") or 0)
        except (TypeError, ValueError):
            return error(400, "Bad Request: message identifier is not specified")
        message = next((m for m in self.sent.get(chat_id, []) if m["message_id"] == message_id), None)
        if message is None:
            return error(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup")
        if message["text"] == text and message.get("reply_markup") == markup:
            return error(400, NOT_MODIFIED)
        message["text"] = text
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        return ok(message)

    def _answer_callback_query(self, params: dict[str, Any]) -> Response:
        query_id = str(params.get("callback_query_id") or "")
        if not query_id or query_id in self.answered_callbacks:
            return error(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            return error(400, "Bad Request: MESSAGE_TOO_LONG")
        self.answered_callbacks[query_id] = text
        return ok(True)

    def _set_webhook(self, params: dict[str, Any]) -> Response:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            return error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _valid_secret(str(secret)):
            return error(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            allowed = json.loads(allowed)
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": allowed}
        if not url:
            return Response(
                status=200, body={"ok": True, "result": True, "description": "Webhook was deleted"}
            )
        return Response(status=200, body={"ok": True, "result": True, "description": "Webhook was set"})

    def _get_webhook_info(self, params: dict[str, Any]) -> Response:
        """WebhookInfo: ``url`` empty when no webhook is set; the optional fields only when they apply."""
        hook = self.webhook or {}
        info: dict[str, Any] = {
            "url": hook.get("url") or "",
            "has_custom_certificate": False,
            "pending_update_count": self.pending_update_count,
        }
        if info["url"]:
            info["max_connections"] = 40
            info["ip_address"] = "203.0.113.7"
            if hook.get("allowed_updates") is not None:
                info["allowed_updates"] = hook["allowed_updates"]
        if self.last_error is not None:
            info["last_error_date"], info["last_error_message"] = self.last_error
        return ok(info)

    def _get_me(self, params: dict[str, Any]) -> Response:
        return ok({**self._bot_user(), "can_join_groups": True, "can_read_all_group_messages": False})


@dataclass
class StoredFile:
    data: bytes
    file_path: str
    size: int


def _int_or(chat_id: str) -> int | str:
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


def _fault_response(fault: Fault) -> Response:
    if fault.kind == "rate_limit":
        return error(
            429, f"Too Many Requests: retry after {fault.retry_after}", retry_after=fault.retry_after
        )
    if fault.kind == "chat_not_found":
        return error(400, "Bad Request: chat not found")
    if fault.kind == "blocked":
        return error(403, "Forbidden: bot was blocked by the user")
    if fault.kind == "server_error":
        return error(500, "Internal Server Error")
    if fault.kind == "html_502":
        return Response(status=502, body="<html><body><h1>502 Bad Gateway</h1></body></html>")
    raise ValueError(f"unknown fault {fault.kind!r}")


def _params(request: Request) -> dict[str, Any] | None:
    """The method's parameters however they came; nested objects in a form arrive as JSON strings."""
    params: dict[str, Any] = dict(request.query)
    content_type = request.headers.get("content-type", "")
    parts = request.multipart()
    if parts is not None:
        fields, files = parts
        params.update(fields)
        params["_files"] = files
        request = Request(request.method, request.path, request.query, {}, b"")
    if request.body and "json" in content_type:
        try:
            body = request.json()
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        params.update(body)
        return params
    if request.body:
        params.update(request.form())
    for key in ("reply_markup", "reply_parameters", "allowed_updates"):
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                return None
    return params


def _check_markup(markup: Any) -> str | None:
    if markup is None:
        return None
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        return 'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an Array'
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                return "Bad Request: can't parse inline keyboard button: Text buttons are unallowed"
            kinds = [k for k in ("callback_data", "url") if k in button]
            if len(kinds) != 1:
                return "Bad Request: can't parse inline keyboard button: exactly one of the optional fields"
            if "callback_data" in button and not 1 <= len(str(button["callback_data"]).encode()) <= 64:
                return "Bad Request: BUTTON_DATA_INVALID"
    return None


def _valid_secret(secret: str) -> bool:
    return 1 <= len(secret) <= 256 and all(c.isascii() and (c.isalnum() or c in "_-") for c in secret)
