"""VK: the Callback API webhook and the ``messages.send`` sender.

Every callback is ``{type, object, group_id, event_id, secret, v}``. ``group_id`` must be the
community in ``VK_GROUP_ID`` (unset: any community is taken, and the log warns once per process).
The ``secret`` field must equal ``VK_SECRET`` (unset → 403 for everything) on every callback but
``confirmation``, which may also come without it: VK asks for the confirmation string when the
server is added, possibly before the secret key is saved with it, and the string confirms only
our own community's server. A ``confirmation`` with a wrong secret is still refused; it is
answered with ``VK_CONFIRMATION_CODE`` (unset → 403). Everything else that passes the checks is answered
``ok`` (text/plain) — VK repeats a callback until it gets exactly that, and stops calling a
server that keeps failing — so events that are not leads are acknowledged with a note.
A body that is not a callback gets 400.

``message_new`` from a private dialog is one ``InboundMessage``: ``message_id = "vk:<event_id>"``
(VK redelivers with the same event_id, so ingest's dedupe drops the copy), ``chat_id`` the
``peer_id``, ``contact.channel_user_id`` the ``from_id``. Messages in group chats
(``peer_id`` ≥ 2000000000) are conversations the community was added to, not leads.

Where the client came from: a ``vk.me/<club>?ref=<ref>&ref_source=<ref_source>`` link puts
``ref``/``ref_source`` on the first message; ``source`` and utm source become ``ref_source``
(or "link" when only ``ref`` is given) and utm campaign ``ref`` — so ``ref_source=ads`` in an
ad's link lets routing rules match ``source: ads``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leadflow.adapters.channels.base import (
    Sender,
    SendError,
    SendResult,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    require_secret,
)
from leadflow.adapters.channels.toolkit import post, split_text
from leadflow.domain.models import Channel, Contact, InboundMessage, MediaRef, OutboundMessage, Utm

if TYPE_CHECKING:
    import requests

__all__ = ["MAX_TEXT", "VkSender", "handle_webhook", "parse_callback", "vk_random_id"]

DEFAULT_API_BASE = "https://api.vk.com/method"
DEFAULT_API_VERSION = "5.199"
MAX_TEXT = 4096  # messages.send: "message … maximum 4096 characters"
GROUP_CHAT_PEER_BASE = 2_000_000_000

RETRYABLE_ERRORS = frozenset({1, 6, 9, 10})  # unknown, too many requests per second, flood control, internal
# How long VK asks us to wait, roughly: 6 is "a few requests per second", 9 is flood control.
_RETRY_AFTER = {6: 1.0, 9: 60.0}

_ATTACHMENT_KINDS = {
    "audio_message": "voice",
    "photo": "photo",
    "doc": "document",
    "video": "video",
    "audio": "audio",
    "sticker": "sticker",
    "graffiti": "sticker",
    "wall": "wall_post",
    "wall_reply": "wall_post",
    "link": "link",
    "market": "product",
    "story": "story",
    "poll": "poll",
    "gift": "gift",
}


class _Vk(BaseModel):
    model_config = ConfigDict(extra="ignore")


class VkCallback(_Vk):
    type: str = Field(min_length=1)
    object: Any = None
    group_id: int | None = None
    event_id: str | None = None
    secret: str | None = None
    v: str | None = None


class VkAttachment(_Vk):
    type: str = "unknown"
    photo: dict[str, Any] | None = None
    doc: dict[str, Any] | None = None
    audio_message: dict[str, Any] | None = None
    video: dict[str, Any] | None = None
    wall: dict[str, Any] | None = None
    link: dict[str, Any] | None = None


class VkMessage(_Vk):
    id: int = 0
    date: int
    from_id: int
    peer_id: int
    text: str = ""
    conversation_message_id: int | None = None
    attachments: list[VkAttachment] = Field(default_factory=list)
    geo: dict[str, Any] | None = None
    ref: str | None = None
    ref_source: str | None = None
    out: int = 0


# --------------------------------------------------------------------------- webhook


def handle_webhook(request: WebhookRequest) -> WebhookResult:
    if request.method.upper() != "POST":
        raise WebhookError(405, f"method {request.method} is not accepted")
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookError(400, "body is not a JSON object")
    try:
        callback = VkCallback.model_validate(payload)
    except ValidationError:
        raise WebhookError(400, "not a VK callback: 'type' is missing") from None
    from leadflow.settings import secret, settings

    _require_our_community(callback.group_id, settings().vk_group_id)
    expected = secret("VK_SECRET")
    if callback.type == "confirmation" and callback.secret is None:
        if not expected:
            raise WebhookError(403, "VK_SECRET is not configured: channel refuses all requests")
    else:
        require_secret(expected, callback.secret, "VK_SECRET")
    if callback.type == "confirmation":
        code = secret("VK_CONFIRMATION_CODE")
        if not code:
            raise WebhookError(403, "VK_CONFIRMATION_CODE is not configured: channel refuses all requests")
        return WebhookResult(body=code)
    return parse_callback(callback)


_warned_any_community = False


def _require_our_community(group_id: int | None, configured: str | None) -> None:
    """``group_id`` must be VK_GROUP_ID (digits; ``club123`` and ``-123`` are read as 123)."""
    global _warned_any_community
    if not configured:
        if not _warned_any_community:
            _warned_any_community = True
            from leadflow.observability import logger

            logger.warning("VK_GROUP_ID is not set: callbacks of any VK community are taken")
        return
    ours = configured.strip().lower().removeprefix("club").removeprefix("public").lstrip("-")
    if not ours.isdigit():
        raise WebhookError(403, "VK_GROUP_ID is not a community id: channel refuses all requests")
    if group_id is None or abs(group_id) != int(ours):
        raise WebhookError(403, "group_id is not the configured VK community (VK_GROUP_ID)")


def parse_callback(callback: VkCallback) -> WebhookResult:
    """A verified callback → what to queue (``ok`` is the answer to every one of them)."""
    if callback.type != "message_new":
        return WebhookResult(note=f"{callback.type[:40]} event")
    raw = callback.object
    # API ≥ 5.103 wraps the message with client_info; older versions send the message itself.
    if isinstance(raw, dict) and isinstance(raw.get("message"), dict):
        raw = raw["message"]
    try:
        message = VkMessage.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise WebhookError(400, f"message_new without a usable message: {where}: {error['msg']}") from None
    if message.out:
        return WebhookResult(note="own outgoing message")
    if message.peer_id >= GROUP_CHAT_PEER_BASE:
        return WebhookResult(note="group chat message")
    media = [_ATTACHMENT_KINDS.get(a.type, a.type[:40]) for a in message.attachments]
    if message.geo:
        media.append("location")
    if callback.event_id:
        message_id = f"vk:{callback.event_id}"
    else:
        # Very old callbacks have no event_id; the message's place in its dialog is just as stable.
        message_id = (
            f"vk:{callback.group_id}:{message.peer_id}:{message.conversation_message_id or message.id}"
        )
    source = message.ref_source or ("link" if message.ref else None)
    inbound = InboundMessage(
        message_id=message_id,
        channel=Channel.vk,
        chat_id=str(message.peer_id),
        contact=Contact(channel_user_id=str(message.from_id)),
        text=message.text,
        media=media,
        attachments=[ref for ref in map(_file, message.attachments) if ref is not None],
        received_at=datetime.fromtimestamp(message.date, tz=UTC),
        source=source,
        utm=Utm(source=source, campaign=message.ref) if source else Utm(),
        recipient=f"vk:{callback.group_id}" if callback.group_id else None,
    )
    return WebhookResult(messages=[inbound])


def _file(attachment: VkAttachment) -> MediaRef | None:
    """A photo, document or voice message by its link (community bots fetch these without a token);
    a video has no file link for a community, so staff get a link to watch it in VK, as they do for
    a shared post or link."""
    if attachment.photo:
        sizes = [s for s in attachment.photo.get("sizes") or [] if isinstance(s, dict) and s.get("url")]
        if not sizes:
            return None
        largest = max(sizes, key=lambda s: int(s.get("width") or 0) * int(s.get("height") or 0))
        return MediaRef(kind="photo", url=str(largest["url"]), mime_type="image/jpeg")
    if attachment.audio_message:
        voice = attachment.audio_message
        url = voice.get("link_mp3") or voice.get("link_ogg")
        mime = "audio/mpeg" if voice.get("link_mp3") else "audio/ogg"
        return MediaRef(kind="voice", url=str(url), mime_type=mime) if url else None
    if attachment.doc and attachment.doc.get("url"):
        doc = attachment.doc
        size = doc.get("size")
        ext = str(doc.get("ext") or "")
        title = str(doc.get("title") or "")
        name = title if not ext or title.lower().endswith(f".{ext.lower()}") else f"{title}.{ext}"
        return MediaRef(
            kind="document",
            url=str(doc["url"]),
            size=size if isinstance(size, int) else None,
            file_name=name or None,
        )
    if attachment.video and attachment.video.get("id") is not None:
        video = attachment.video
        return MediaRef(kind="video", link=f"https://vk.com/video{video.get('owner_id')}_{video['id']}")
    if attachment.wall and attachment.wall.get("id") is not None:  # a post the client shared
        post = attachment.wall
        owner = post.get("owner_id", post.get("to_id", post.get("from_id")))
        return MediaRef(kind="wall_post", link=f"https://vk.com/wall{owner}_{post['id']}")
    if attachment.link and isinstance(attachment.link.get("url"), str):
        return MediaRef(
            kind="link", link=attachment.link["url"], caption=attachment.link.get("title") or None
        )
    return None


# --------------------------------------------------------------------------- sender


def vk_random_id(outbound_id: str, part: int = 0) -> int:
    """A positive int32 fixed by the outbound id and the part: a retried send repeats it, so VK drops it."""
    digest = hashlib.sha256(f"{outbound_id}\x00{part}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1


class VkSender(Sender):
    """Sends ``messages.send`` as the community; long texts go out in parts of at most 4096 characters.

    The token travels in the POST body, never in the URL, so no exception text can quote it.
    """

    channel = Channel.vk.value

    def __init__(
        self,
        token: str,
        session: requests.Session | None = None,
        base_url: str = DEFAULT_API_BASE,
        api_version: str = DEFAULT_API_VERSION,
        *,
        timeout_s: float = 10.0,
    ):
        if session is None:
            import requests

            session = requests.Session()
        self._token = token
        self._session = session
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"VkSender(base_url={self.base_url!r}, api_version={self.api_version!r})"

    @classmethod
    def from_settings(cls, session: requests.Session | None = None) -> VkSender:
        from leadflow.settings import secret, settings

        token = secret("VK_TOKEN")
        if not token:
            raise SendError("VK_TOKEN is not configured", retryable=False)
        return cls(token, session, settings().vk_api_base)

    def send(self, message: OutboundMessage) -> SendResult:
        parts = split_text(message.text, MAX_TEXT)
        if not parts:
            raise SendError("vk messages.send: empty text", retryable=False)
        try:
            peer_id = int(message.to)
        except ValueError:
            raise SendError("vk messages.send: recipient is not a peer id", retryable=False) from None
        vk_message_id = ""
        for index, part in enumerate(parts):
            params = {"peer_id": peer_id, "message": part, "random_id": vk_random_id(message.id, index)}
            try:
                vk_message_id = str(self.call("messages.send", params))
            except SendError as exc:
                if index == 0:
                    raise
                # The parts already sent are safe to resend: their random_id makes VK drop the copies.
                raise SendError(
                    f"{exc.reason} (after {index} of {len(parts)} parts)",
                    retryable=exc.retryable,
                    retry_after=exc.retry_after,
                ) from None
        return SendResult(provider_message_id=vk_message_id, segments=len(parts))

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """POST one API method; its ``response`` on success, ``SendError`` otherwise."""
        data = {**params, "access_token": self._token, "v": self.api_version}
        sending = method == "messages.send"
        response = post(
            self._session,
            f"{self.base_url}/{method}",
            what=f"vk {method}",
            timeout=self._timeout_s,
            sending=sending,
            data=data,
        )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or response.status_code >= 300:
            retryable = (
                response.status_code >= 500 or response.status_code == 429 or response.status_code < 300
            )
            raise SendError(
                f"vk {method}: HTTP {response.status_code} without an API answer", retryable=retryable
            )
        error = answer.get("error")
        if isinstance(error, dict):
            raise vk_send_error(method, error)
        if "response" not in answer:
            raise SendError(f"vk {method}: answer without 'response'", retryable=False)
        return answer["response"]


def vk_send_error(method: str, error: dict[str, Any]) -> SendError:
    """VK reports errors with HTTP 200: ``{"error": {"error_code","error_msg","request_params"}}``.

    Only the code and message are kept: ``request_params`` echoes the peer id and the text.
    """
    try:
        code = int(error.get("error_code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        code = 0
    from leadflow.adapters.channels.meta import mask_digits

    reason = f"vk {method}: error {code}: {mask_digits(str(error.get('error_msg') or ''))[:200]}"
    if code in RETRYABLE_ERRORS:
        return SendError(reason, retryable=True, retry_after=_RETRY_AFTER.get(code))
    return SendError(reason, retryable=False)
