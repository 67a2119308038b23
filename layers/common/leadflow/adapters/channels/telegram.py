"""Telegram: the webhook (client messages and the staff workspace) and the Bot API sender.

Who is who. Only private chats are clients. In a private chat (and in a staff group) these are
staff traffic and become a ``StaffEvent``: every ``callback_query`` (a button on a lead card), a
reply to a message our bot sent (``action="reply"``), and the staff commands ``/stop``, ``/on``,
``/off [date]``, ``/leads``, ``/today``, ``/bot`` and ``/start inv-<code>`` (staff onboarding).
A command's ``action`` keeps its slash (``"/off"``) so it can never collide with callback data;
its argument goes to ``text``. Everything else from a private chat is an ``InboundMessage``;
the score step decides whether the chat belongs to staff. Messages that reach us through a
Telegram Business connection are always clients: a business account owner's chats are not a
staff workspace, and replies to them must go through the connection.

Where a client came from. A t.me link ``https://t.me/<bot>?start=<payload>`` makes the client's
first message ``/start <payload>`` (Telegram allows ``A-Z a-z 0-9 _ -``, up to 64 characters).
The payload is read as parts joined by a double underscore, each part ``<key>-<value>`` or
``<key>_<value>``:

    src      → source and utm.source      ``src-instagram``
    med      → utm.medium                 ``med-cpc``
    cmp      → utm.campaign               ``cmp-spring_sale``
    cnt      → utm.content                ``cnt-stories``
    trm      → utm.term                   ``trm-manicure``
    promo    → promo (as written)         ``promo_SPRING10``

so ``src-instagram__cmp-march8__promo_ROSES`` is source ``instagram``, campaign ``march8``,
promo ``ROSES``. A payload that follows none of this is taken whole as the source (a business
that prints ``t.me/bot?start=flyer`` on a flyer sees source ``flyer``). The ``/start`` itself
is not text the client wrote, so the message's text is empty; it is still a lead: the client
opened the chat.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leadflow import clock
from leadflow.adapters.channels.base import (
    Sender,
    SendError,
    SendResult,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    require_secret,
)
from leadflow.adapters.channels.toolkit import (
    keep_url_secrets_out_of_logs,
    post,
    prefix_within,
    split_text,
    utf16_len,
)
from leadflow.adapters.media import Blob, MediaNotStored, mime_of
from leadflow.domain.models import (
    Attachment,
    Channel,
    Contact,
    InboundMessage,
    MediaRef,
    OutboundMessage,
    StaffEvent,
    Utm,
)
from leadflow.domain.phones import to_e164

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
MAX_TEXT_UTF16 = 4096  # sendMessage: "1-4096 characters"; counted in UTF-16 units, the stricter reading
STAFF_COMMANDS = frozenset({"/start", "/stop", "/on", "/off", "/leads", "/today", "/bot"})
STAFF_INVITE_PREFIX = "inv-"
ALLOWED_UPDATES = ["message", "business_connection", "business_message", "callback_query"]
UPLOAD_TIMEOUT_S = 40.0  # a client's file of up to 20 MB going up to the Bot API
MAX_CAPTION_UTF16 = 1024  # "0-1024 characters after entities parsing"
# Bots may download files of up to 20 MB (getFile).
MAX_BOT_DOWNLOAD = 20 * 1024 * 1024
# How a client's file goes up to staff, by its kind: the method and the file's parameter.
UPLOADS = {
    "photo": ("sendPhoto", "photo"),
    "voice": ("sendVoice", "voice"),
    "video": ("sendVideo", "video"),
    "video_note": ("sendVideo", "video"),
    "audio": ("sendAudio", "audio"),
}
# Calls that change nothing: a timeout there is simply retryable, not an unknown outcome.
READ_ONLY_METHODS = frozenset({"getMe", "getWebhookInfo", "getFile", "getChat", "answerCallbackQuery"})

# Media kinds in the order we report them; ``animation`` also fills ``document``, so it wins.
_MEDIA_FIELDS = (
    "voice",
    "audio",
    "video",
    "video_note",
    "animation",
    "photo",
    "document",
    "sticker",
    "story",
    "location",
    "contact",
)
_UTM_KEYS = {"src": "source", "med": "medium", "cmp": "campaign", "cnt": "content", "trm": "term"}
_PAYLOAD_PART = re.compile(r"^(src|med|cmp|cnt|trm|promo)[-_](.+)$", re.IGNORECASE)


# --------------------------------------------------------------------------- Update models


class _Tg(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TgUser(_Tg):
    id: int
    is_bot: bool = False
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None


class TgChat(_Tg):
    id: int
    type: str = "private"


class TgContact(_Tg):
    phone_number: str
    first_name: str = ""
    last_name: str | None = None
    user_id: int | None = None


class TgEntity(_Tg):
    type: str
    offset: int
    length: int


class TgRepliedMessage(_Tg):
    message_id: int
    from_: TgUser | None = Field(default=None, alias="from")
    text: str | None = None


class TgMessage(_Tg):
    message_id: int
    date: int
    chat: TgChat
    from_: TgUser | None = Field(default=None, alias="from")
    business_connection_id: str | None = None
    sender_business_bot: TgUser | None = None
    text: str | None = None
    caption: str | None = None
    entities: list[TgEntity] = Field(default_factory=list)
    contact: TgContact | None = None
    reply_to_message: TgRepliedMessage | None = None
    voice: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    video: dict[str, Any] | None = None
    video_note: dict[str, Any] | None = None
    animation: dict[str, Any] | None = None
    photo: list[dict[str, Any]] | None = None
    document: dict[str, Any] | None = None
    sticker: dict[str, Any] | None = None
    story: dict[str, Any] | None = None
    location: dict[str, Any] | None = None


class TgCardRef(_Tg):
    """``MaybeInaccessibleMessage``: a card older than 48 h arrives with ``date`` 0, chat and id kept."""

    message_id: int
    chat: TgChat


class TgCallbackQuery(_Tg):
    id: str
    from_: TgUser = Field(alias="from")
    message: TgCardRef | None = None
    data: str | None = None


class TgUpdate(_Tg):
    update_id: int
    message: TgMessage | None = None
    business_message: TgMessage | None = None
    callback_query: TgCallbackQuery | None = None
    edited_message: dict[str, Any] | None = None
    edited_business_message: dict[str, Any] | None = None
    business_connection: dict[str, Any] | None = None
    channel_post: dict[str, Any] | None = None
    edited_channel_post: dict[str, Any] | None = None


# --------------------------------------------------------------------------- webhook


def handle_webhook(request: WebhookRequest) -> WebhookResult:
    from leadflow.settings import secret, settings

    require_secret(secret("TELEGRAM_WEBHOOK_SECRET"), request.header(SECRET_HEADER), "telegram secret token")
    if len(request.body) > settings().max_body_bytes:
        raise WebhookError(413, "telegram update larger than the configured limit")
    return parse_update(_decode_update(request.body))


def _decode_update(body: bytes) -> TgUpdate:
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError(400, "telegram update is not valid JSON") from None
    if not isinstance(raw, dict):
        raise WebhookError(400, "telegram update is not a JSON object")
    if "update_id" not in raw:
        raise WebhookError(400, "telegram update has no update_id")
    try:
        return TgUpdate.model_validate(raw)
    except ValidationError as exc:
        # Field paths and error kinds only: pydantic's messages quote the input, which is personal data.
        where = sorted({".".join(str(p) for p in e["loc"]) + f" ({e['type']})" for e in exc.errors()})
        raise WebhookError(
            400, "telegram update does not match the Bot API: " + ", ".join(where[:5])
        ) from None


def parse_update(update: TgUpdate) -> WebhookResult:
    """Turn one verified Update into what ingest queues (or a note saying why nothing)."""
    event_id = f"telegram:{update.update_id}"
    if update.callback_query is not None:
        return WebhookResult(staff_events=[_callback_event(event_id, update.callback_query)])
    if update.message is not None:
        return _from_message(event_id, update.message)
    if update.business_message is not None:
        return _from_business_message(event_id, update.business_message)
    if update.edited_message is not None or update.edited_business_message is not None:
        return WebhookResult(note="edited message: ignored")
    if update.business_connection is not None:
        return WebhookResult(note="business connection changed: ignored")
    if update.channel_post is not None or update.edited_channel_post is not None:
        return WebhookResult(note="channel post: ignored")
    return WebhookResult(note="update type not handled: ignored")


def _callback_event(event_id: str, query: TgCallbackQuery) -> StaffEvent:
    card = query.message
    return StaffEvent(
        event_id=event_id,
        chat_id=str(card.chat.id if card else query.from_.id),
        user_id=str(query.from_.id),
        action=query.data or "",
        reply_to_message_id=str(card.message_id) if card else None,
        callback_query_id=query.id,
        # A callback carries no date of its own; the card's date is when the card was sent.
        received_at=_now(),
    )


def _from_message(event_id: str, message: TgMessage) -> WebhookResult:
    sender = message.from_
    if sender is None:
        return WebhookResult(note="message without a sender (anonymous admin or channel): ignored")
    if sender.is_bot:
        return WebhookResult(note="message from a bot: ignored")
    staff = _staff_event(event_id, message, sender)
    if message.chat.type != "private":
        if staff is not None:
            return WebhookResult(staff_events=[staff])  # a staff group
        return WebhookResult(note=f"{message.chat.type} chat message: ignored (clients write in private)")
    inbound = _inbound(event_id, message, sender)
    if inbound is None and staff is None:
        return WebhookResult(note="service message without content: ignored")
    # Both readings of one update: ingest keeps the one the chat calls for (a staff chat or a client's).
    return WebhookResult(
        messages=[inbound] if inbound else [], staff_events=[staff] if staff else [], chat_decides=True
    )


def _from_business_message(event_id: str, message: TgMessage) -> WebhookResult:
    sender = message.from_
    if sender is None or sender.is_bot:
        return WebhookResult(note="business message without a human sender: ignored")
    # In a business chat the chat id is the client's; anything else was written by the business itself.
    if message.sender_business_bot is not None or sender.id != message.chat.id:
        return WebhookResult(note="business message sent by the business account: ignored")
    inbound = _inbound(event_id, message, sender, commands_are_text=True)
    if inbound is None:
        return WebhookResult(note="service message without content: ignored")
    return WebhookResult(messages=[inbound])


def _command(message: TgMessage) -> tuple[str, str] | None:
    """``("/off", "2025-03-08")`` for a message that starts with a bot command, ``@botname`` dropped."""
    text = message.text or ""
    head = next((e for e in message.entities if e.type == "bot_command" and e.offset == 0), None)
    if head is None:
        return None
    # Entity offsets count UTF-16 units; a command is ASCII, so they equal str indexes here.
    name = text[: head.length].split("@", 1)[0].lower()
    return name, text[head.length :].strip()


def _staff_event(event_id: str, message: TgMessage, sender: TgUser) -> StaffEvent | None:
    text = message.text or message.caption or ""
    action: str | None = None
    argument = text
    reply_to: str | None = None
    reply_to_text: str | None = None
    command = _command(message)
    replied = message.reply_to_message
    if replied is not None and replied.from_ is not None and replied.from_.is_bot:
        # Kept for commands too: ``/bot`` sent as a reply to a lead card names the lead it is about.
        reply_to = str(replied.message_id)
        # A lead card starts «Лид <id>»: the reply names its lead without a lookup.
        reply_to_text = (replied.text or "").split("\n", 1)[0][:100] or None
    if command is not None and command[0] in STAFF_COMMANDS:
        name, argument = command
        is_invite = argument.lower().startswith(STAFF_INVITE_PREFIX)
        if name != "/start" or is_invite:
            action = name
    elif reply_to is not None:
        action = "reply"
    if action is None:
        return None
    return StaffEvent(
        event_id=event_id,
        chat_id=str(message.chat.id),
        user_id=str(sender.id),
        action=action,
        text=argument,
        reply_to_message_id=reply_to,
        reply_to_text=reply_to_text,
        received_at=_utc(message.date),
    )


def _inbound(
    event_id: str, message: TgMessage, sender: TgUser, *, commands_are_text: bool = False
) -> InboundMessage | None:
    text = message.text or message.caption or ""
    media = _media_kinds(message)
    contact = Contact(name=sender.first_name or None, channel_user_id=str(sender.id))
    if message.contact is not None:
        contact.phone = to_e164(message.contact.phone_number, platform=True)
        if message.contact.user_id == sender.id:
            # Shared by its owner (Telegram's «поделиться номером»): the number is theirs.
            contact.phone_verified = contact.phone is not None
            own = " ".join(p for p in (message.contact.first_name, message.contact.last_name) if p)
            contact.name = own or contact.name
    source: str | None = None
    utm = Utm()
    promo: str | None = None
    command = None if commands_are_text else _command(message)
    if command is not None and command[0] == "/start":
        source, utm, promo = parse_start_payload(command[1])
        text = ""
    elif not text and not media:
        return None
    return InboundMessage(
        message_id=event_id,
        channel=Channel.telegram,
        chat_id=str(message.chat.id),
        contact=contact,
        text=text,
        media=media,
        attachments=_attachments(message),
        received_at=_utc(message.date),
        source=source,
        utm=utm,
        promo=promo,
        business_connection_id=message.business_connection_id,
    )


def _media_kinds(message: TgMessage) -> list[str]:
    kinds = [name for name in _MEDIA_FIELDS if getattr(message, name)]
    if "animation" in kinds:
        kinds.remove("document")
    return kinds


# Fields that hold one file, by the kind we call it (``animation`` is a silent video).
_FILE_FIELDS = {
    "voice": "voice",
    "audio": "audio",
    "video": "video",
    "video_note": "video_note",
    "animation": "video",
    "document": "document",
    "sticker": "sticker",
}


def _attachments(message: TgMessage) -> list[MediaRef]:
    """The file of a message (Telegram sends an album as one message per file). A client's own chat
    with the bot is copied to staff as it is; a Business chat's message cannot be, so it is fetched."""
    found: dict[str, Any] | None = None
    kind = ""
    if message.photo:
        found, kind = message.photo[-1], "photo"  # the sizes grow: the last is the original
    else:
        for name in _FILE_FIELDS:
            value = getattr(message, name)
            if isinstance(value, dict):
                found, kind = value, _FILE_FIELDS[name]
                break
    if not found or not found.get("file_id"):
        return []
    copy_from = None if message.business_connection_id else f"{message.chat.id}:{message.message_id}"
    size = found.get("file_size")
    return [
        MediaRef(
            kind=kind,
            file_id=str(found["file_id"]),
            mime_type=found.get("mime_type") or ("image/jpeg" if kind == "photo" else None),
            size=int(size) if isinstance(size, int) else None,
            file_name=found.get("file_name"),
            caption=message.caption,
            copy_from=copy_from,
        )
    ]


def parse_start_payload(payload: str) -> tuple[str | None, Utm, str | None]:
    """``(source, utm, promo)`` from a ``/start`` deep-link payload (scheme in the module docstring)."""
    payload = payload.strip()
    utm = Utm()
    if not payload:
        return None, utm, None
    promo: str | None = None
    matched = False
    for part in payload.split("__"):
        found = _PAYLOAD_PART.match(part)
        if not found:
            continue
        matched = True
        key, value = found.group(1).lower(), found.group(2)
        if key == "promo":
            promo = value
        else:
            setattr(utm, _UTM_KEYS[key], value.lower())
    if not matched:
        return payload.lower(), utm, None
    return utm.source, utm, promo


def _utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _now() -> datetime:
    return clock.now()


# --------------------------------------------------------------------------- Bot API client

_NOT_MODIFIED = "message is not modified"


class TelegramBot:
    """A thin Bot API client. The token is part of every URL, so no URL ever reaches an error or a log."""

    def __init__(
        self,
        token: str,
        session: requests.Session | None = None,
        *,
        base_url: str = "https://api.telegram.org",
        timeout_s: float = 10,
    ):
        if session is None:
            import requests

            session = requests.Session()
        self._token = token
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        keep_url_secrets_out_of_logs()  # the token is part of every request's path

    def __repr__(self) -> str:
        return f"TelegramBot(base_url={self._base_url!r})"

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """POST one Bot API method; the ``result`` on success, ``SendError`` otherwise."""
        url = f"{self._base_url}/bot{self._token}/{method}"
        sending = method not in READ_ONLY_METHODS
        response = post(
            self._session,
            url,
            what=f"telegram {method}",
            timeout=self._timeout_s,
            sending=sending,
            json=params,
        )
        return self._result(method, response)

    def _result(self, method: str, response: requests.Response) -> Any:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            retryable = response.status_code >= 500 or response.status_code == 429
            raise SendError(
                f"telegram {method}: HTTP {response.status_code} without a Bot API answer",
                retryable=retryable,
            )
        if answer.get("ok") is True and response.status_code < 300:
            return answer.get("result")
        code = answer.get("error_code") or response.status_code
        description = _log_safe(str(answer.get("description") or f"HTTP {response.status_code}"))
        parameters = answer.get("parameters")
        if not isinstance(parameters, dict):
            parameters = {}
        reason = f"telegram {method}: {code} {description}"
        if code == 429:
            retry_after = parameters.get("retry_after")
            raise SendError(
                reason, retryable=True, retry_after=float(retry_after) if retry_after is not None else None
            )
        if isinstance(code, int) and code >= 500:
            raise SendError(reason, retryable=True)
        raise SendError(reason, retryable=False)

    def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        buttons: list[list[dict]] | None = None,
        reply_to_message_id: int | str | None = None,
        business_connection_id: str | None = None,
        parse_mode: str | None = None,
    ) -> int:
        params: dict[str, Any] = {"chat_id": _chat(chat_id), "text": text}
        if buttons:
            params["reply_markup"] = {"inline_keyboard": buttons}
        if reply_to_message_id is not None:
            # The client may have deleted the message; the answer still matters more than the quote.
            params["reply_parameters"] = {
                "message_id": int(reply_to_message_id),
                "allow_sending_without_reply": True,
            }
        if business_connection_id:
            params["business_connection_id"] = business_connection_id
        if parse_mode:
            params["parse_mode"] = parse_mode
        result = self.call("sendMessage", params)
        return int(result["message_id"])

    def edit_message_text(
        self, chat_id: int | str, message_id: int | str, text: str, buttons: list[list[dict]] | None = None
    ) -> None:
        params: dict[str, Any] = {"chat_id": _chat(chat_id), "message_id": int(message_id), "text": text}
        if buttons is not None:
            params["reply_markup"] = {"inline_keyboard": buttons}
        try:
            self.call("editMessageText", params)
        except SendError as exc:
            # A second press of the same button re-renders the same card: the card is already right.
            if not exc.retryable and _NOT_MODIFIED in exc.reason.lower():
                return
            raise

    def answer_callback_query(self, callback_query_id: str, text: str | None = None) -> None:
        params: dict[str, Any] = {"callback_query_id": callback_query_id}
        if text:
            params["text"] = text
        self.call("answerCallbackQuery", params)

    def set_webhook(
        self,
        url: str,
        secret_token: str,
        allowed_updates: list[str] | None = None,
        *,
        drop_pending_updates: bool = False,
    ) -> None:
        params: dict[str, Any] = {
            "url": url,
            "secret_token": secret_token,
            "allowed_updates": ALLOWED_UPDATES if allowed_updates is None else allowed_updates,
        }
        if drop_pending_updates:
            params["drop_pending_updates"] = True
        self.call("setWebhook", params)

    def get_me(self) -> dict[str, Any]:
        return dict(self.call("getMe", {}))

    def get_file(self, file_id: str) -> dict[str, Any]:
        """``File``: ``file_path`` (valid for an hour) and, when known, ``file_size``."""
        return dict(self.call("getFile", {"file_id": file_id}))

    def download(self, file_path: str, max_bytes: int, *, within_s: float | None = None) -> Blob:
        from leadflow.adapters.media import download

        url = f"{self._base_url}/file/bot{self._token}/{file_path.lstrip('/')}"
        return download(self._session, url, max_bytes=max_bytes, what="telegram file", within_s=within_s)

    def copy_message(
        self,
        chat_id: int | str,
        from_chat_id: int | str,
        message_id: int | str,
        *,
        reply_to: str | None = None,
    ) -> int:
        """The client's message as it is (caption kept), without "forwarded from" — no download."""
        params: dict[str, Any] = {
            "chat_id": _chat(chat_id),
            "from_chat_id": _chat(from_chat_id),
            "message_id": int(message_id),
        }
        if reply_to is not None:
            params["reply_parameters"] = {"message_id": int(reply_to), "allow_sending_without_reply": True}
        result = self.call("copyMessage", params)
        return int(result["message_id"])

    def send_file(
        self,
        method: str,
        field: str,
        chat_id: int | str,
        blob: Blob,
        *,
        caption: str | None = None,
        reply_to: str | None = None,
    ) -> int:
        """sendPhoto / sendVoice / sendVideo / sendAudio / sendDocument with the file uploaded
        (multipart/form-data; nested parameters as JSON strings, as the Bot API reads them)."""
        data: dict[str, Any] = {"chat_id": str(chat_id)}
        if caption:
            data["caption"] = caption
        if reply_to is not None:
            data["reply_parameters"] = json.dumps(
                {"message_id": int(reply_to), "allow_sending_without_reply": True}
            )
        files = {field: (blob.file_name or field, blob.data, blob.mime_type or "application/octet-stream")}
        response = post(
            self._session,
            f"{self._base_url}/bot{self._token}/{method}",
            what=f"telegram {method}",
            timeout=(self._timeout_s, UPLOAD_TIMEOUT_S),
            data=data,
            files=files,
        )
        return int(self._result(method, response)["message_id"])


def _chat(chat_id: int | str) -> int | str:
    text = str(chat_id)
    return int(text) if text.lstrip("-").isdigit() else text


def _log_safe(description: str) -> str:
    return description[:200]


# --------------------------------------------------------------------------- sender


class TelegramSender(Sender):
    """Sends an ``OutboundMessage`` through the bot; long texts go out as several messages.

    ``provider_message_id`` is the last part's id: that part carries the buttons, so it is the
    message staff press and reply to, and the one a later edit changes.
    """

    channel = Channel.telegram.value

    def __init__(
        self,
        bot: TelegramBot,
        *,
        max_inline_wait_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        media: Callable[[str, Attachment], bytes | None] | None = None,
    ):
        self.bot = bot
        self._max_inline_wait_s = max_inline_wait_s
        self._sleep = sleep
        self._media = media  # (lead id, attachment) → the file's bytes from the media bucket

    @classmethod
    def from_settings(cls, session: requests.Session | None = None) -> TelegramSender:
        from leadflow.settings import secret, settings

        token = secret("TELEGRAM_BOT_TOKEN")
        if not token:
            raise SendError("TELEGRAM_BOT_TOKEN is not configured", retryable=False)
        return cls(TelegramBot(token, session, base_url=settings().telegram_api_base))

    def send(self, message: OutboundMessage) -> SendResult:
        attachment = message.attachment
        if attachment is not None and (attachment.copy_from or attachment.stored):
            return self._send_attachment(message, attachment)
        parts = split_text(message.text, MAX_TEXT_UTF16, utf16_len)
        if not parts:
            raise SendError("telegram sendMessage: empty text", retryable=False)
        message_id = 0
        for index, part in enumerate(parts):
            first, last = index == 0, index == len(parts) - 1
            try:
                message_id = self._send_part(
                    message,
                    part,
                    buttons=message.buttons if last else None,
                    reply_to=message.reply_to_message_id if first else None,
                    inline_wait=not first,
                )
            except SendError as exc:
                if first:
                    raise
                # Earlier parts are already with the client; say so, since a retry sends them again.
                raise SendError(
                    f"{exc.reason} (after {index} of {len(parts)} parts were sent)",
                    retryable=exc.retryable,
                    retry_after=exc.retry_after,
                ) from None
        return SendResult(provider_message_id=str(message_id), segments=len(parts))

    def _send_attachment(self, message: OutboundMessage, attachment: Attachment) -> SendResult:
        """A client's file under the card: copied when the client sent it to this bot, else uploaded
        from the media bucket. A photo or voice the Bot API will not take as such (dimensions, codec)
        goes as a document: the owner still gets the file."""
        reply_to = message.reply_to_message_id
        if attachment.copy_from:
            from_chat, _, from_message = attachment.copy_from.rpartition(":")
            copied = self.bot.copy_message(message.to, from_chat, from_message, reply_to=reply_to)
            return SendResult(provider_message_id=str(copied))
        data = self._media(message.lead_id or "", attachment) if self._media else None
        if data is None:
            raise MediaNotStored(
                f"telegram: {attachment.kind} of {message.lead_id} is not in the media bucket"
            )
        blob = Blob(data, mime_of(attachment.ext, attachment.mime_type), _file_name(attachment))
        caption = (
            prefix_within(message.text.strip(), MAX_CAPTION_UTF16, utf16_len)
            if message.text.strip()
            else None
        )
        method, field = UPLOADS.get(attachment.kind, ("sendDocument", "document"))
        try:
            sent = self.bot.send_file(method, field, message.to, blob, caption=caption, reply_to=reply_to)
        except SendError as exc:
            if exc.retryable or method == "sendDocument":
                raise
            sent = self.bot.send_file(
                "sendDocument", "document", message.to, blob, caption=caption, reply_to=reply_to
            )
        return SendResult(provider_message_id=str(sent))

    def edit(self, message: OutboundMessage) -> SendResult:
        """editMessageText on the message ``reply_to_message_id`` (a lead card) in chat ``to``.

        No waiting on 429 here: the caller's queue retries the whole staff event later.
        """
        if not message.reply_to_message_id:
            raise SendError("telegram editMessageText: no message to edit", retryable=False)
        text = prefix_within(message.text.strip(), MAX_TEXT_UTF16, utf16_len)
        if not text:
            raise SendError("telegram editMessageText: empty text", retryable=False)
        self.bot.edit_message_text(message.to, message.reply_to_message_id, text, message.buttons)
        return SendResult(provider_message_id=message.reply_to_message_id)

    def answer_callback(self, callback_query_id: str, text: str) -> SendResult:
        # A toast shows at most 200 characters; longer ones are refused by the Bot API.
        self.bot.answer_callback_query(callback_query_id, text[:200] or None)
        return SendResult()

    def _send_part(
        self,
        message: OutboundMessage,
        text: str,
        *,
        buttons: list[list[dict]] | None,
        reply_to: str | None,
        inline_wait: bool,
    ) -> int:
        attempts = 0
        while True:
            try:
                return self.bot.send_message(
                    message.to,
                    text,
                    buttons=buttons or None,
                    reply_to_message_id=reply_to,
                    business_connection_id=message.business_connection_id,
                )
            except SendError as exc:
                # Telegram allows about one message a second per chat: the rest of a split text waits its
                # turn here, because giving up half-way would make the queue's retry repeat the first part.
                wait = exc.retry_after
                attempts += 1
                if not inline_wait or wait is None or wait > self._max_inline_wait_s or attempts > 3:
                    raise
                self._sleep(wait)


def _file_name(attachment: Attachment) -> str:
    if attachment.file_name:
        return attachment.file_name
    return f"{attachment.kind}.{attachment.ext}"


# --------------------------------------------------------------------------- fetching clients' files


class TelegramMediaFetcher:
    """``getFile`` then the file's URL. Bots may fetch up to 20 MB; a larger file is copied to staff
    from the client's chat anyway (copyMessage needs no download)."""

    def __init__(self, bot: TelegramBot):
        self.bot = bot

    def fetch(self, ref: MediaRef, max_bytes: int, *, within_s: float | None = None) -> Blob:
        from leadflow.adapters.media import MediaTooBig, MediaUnavailable

        deadline = None if within_s is None else time.monotonic() + within_s

        cap = min(max_bytes, MAX_BOT_DOWNLOAD)
        if ref.size and ref.size > cap:
            raise MediaTooBig(f"telegram file: {ref.size} bytes")
        if not ref.file_id:
            raise MediaUnavailable("telegram file: no file_id")
        try:
            info = self.bot.get_file(ref.file_id)
        except SendError as exc:
            if "too big" in exc.reason.lower():
                raise MediaTooBig("telegram getFile: file is too big") from None
            raise MediaUnavailable(exc.reason) from None
        size = info.get("file_size")
        if isinstance(size, int) and size > cap:
            raise MediaTooBig(f"telegram file: {size} bytes")
        path = info.get("file_path")
        if not path:
            raise MediaUnavailable("telegram getFile: no file_path")
        left = None if deadline is None else deadline - time.monotonic()
        blob = self.bot.download(str(path), cap, within_s=left)
        name = ref.file_name or str(path).rsplit("/", 1)[-1]
        return Blob(blob.data, ref.mime_type or _mime_from_path(str(path)), name)


def _mime_from_path(path: str) -> str | None:
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    return {"oga": "audio/ogg", "ogg": "audio/ogg", "jpg": "image/jpeg", "jpeg": "image/jpeg", "mp4": "video/mp4",
            "mp3": "audio/mpeg", "m4a": "audio/mp4", "webp": "image/webp", "png": "image/png"}.get(suffix)  # fmt: skip
