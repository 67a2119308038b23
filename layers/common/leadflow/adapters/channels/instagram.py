"""Instagram Messaging: the webhook (``object: instagram``, ``entry[].messaging[]``) and the sender.

Each client message is one ``InboundMessage``: ``message_id = "instagram:<mid>"``, ``chat_id``
and ``contact.channel_user_id`` the sender's Instagram-scoped id (the send API's recipient).
Timestamps are milliseconds.

Not leads (counted in the note): echoes of our own messages (``is_echo``), deleted messages,
reactions, read receipts, and a bare ``referral`` (the client opened the chat from a link or an
ad but wrote nothing yet: answering would message someone who has not written).

A ``postback`` (an ice breaker or a button the client tapped) is a lead whose text is the
button's title. A message that carries a ``referral`` (first message after an ad or an
``ig.me/<account>?ref=…`` link) sets ``source`` "ad" with utm source "instagram", medium
"paid", campaign the ad title, content the ad id; a link's ``ref`` sets source "link" and
utm campaign the ref.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leadflow.adapters.channels.base import (
    Sender,
    SendError,
    SendResult,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from leadflow.adapters.channels.meta import (
    DEFAULT_GRAPH_BASE,
    GraphApi,
    OutsideWindow,
    route_meta_webhook,
    summarise,
    utc_from_seconds,
)
from leadflow.adapters.channels.toolkit import split_text, utf8_len
from leadflow.domain.models import Channel, Contact, InboundMessage, MediaRef, OutboundMessage, Utm

if TYPE_CHECKING:
    import requests

__all__ = ["MAX_TEXT_BYTES", "InstagramSender", "OutsideWindow", "handle_webhook", "parse_notification"]

OBJECT = "instagram"
# "text must be UTF-8 and less than 1000 bytes": counted in bytes, a Cyrillic letter is two.
MAX_TEXT_BYTES = 1000

_ATTACHMENT_KINDS = {
    "image": "photo",
    "video": "video",
    "audio": "voice",  # audio in an Instagram DM is a recorded voice message
    "file": "document",
    "share": "share",
    "story_mention": "story",
    "ig_reel": "reel",
    "reel": "reel",
    "animated_image": "sticker",
    "sticker": "sticker",
    "location": "location",
}


class _Ig(BaseModel):
    model_config = ConfigDict(extra="ignore")


class IgParty(_Ig):
    id: str = Field(min_length=1)


class IgAttachment(_Ig):
    type: str = "unsupported"
    payload: dict[str, Any] | None = None


class IgAdsContext(_Ig):
    ad_title: str | None = None


class IgReferral(_Ig):
    ref: str | None = None
    source: str | None = None
    type: str | None = None
    ad_id: str | None = None
    ads_context_data: IgAdsContext | None = None


class IgMessage(_Ig):
    mid: str = Field(min_length=1)
    text: str | None = None
    attachments: list[IgAttachment] = Field(default_factory=list)
    is_echo: bool = False
    is_deleted: bool = False
    is_unsupported: bool = False
    reply_to: dict[str, Any] | None = None
    referral: IgReferral | None = None


class IgPostback(_Ig):
    mid: str | None = None
    title: str | None = None
    payload: str | None = None
    referral: IgReferral | None = None


class IgMessaging(_Ig):
    sender: IgParty
    recipient: IgParty
    timestamp: int
    message: IgMessage | None = None
    postback: IgPostback | None = None
    referral: IgReferral | None = None
    reaction: dict[str, Any] | None = None
    read: dict[str, Any] | None = None


class IgEntry(_Ig):
    id: str | None = None
    time: int | None = None
    messaging: list[IgMessaging] = Field(default_factory=list)
    changes: list[dict[str, Any]] = Field(default_factory=list)


class IgNotification(_Ig):
    object: str
    entry: list[IgEntry]


# --------------------------------------------------------------------------- webhook


def handle_webhook(request: WebhookRequest) -> WebhookResult:
    """GET: Meta's subscription handshake. POST: a signed delivery (see ``leadflow.adapters.channels.meta``)."""
    return route_meta_webhook(request, parse_notification)


def parse_notification(payload: dict[str, Any]) -> WebhookResult:
    if payload.get("object") != OBJECT:
        return WebhookResult(note=f"unexpected object {str(payload.get('object'))[:40]!r}")
    try:
        notification = IgNotification.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise WebhookError(400, f"not an Instagram notification: {where}: {error['msg']}") from None
    messages: list[InboundMessage] = []
    skipped: Counter[str] = Counter()
    for entry in notification.entry:
        skipped["comment or mention change"] += len(entry.changes)
        for event in entry.messaging:
            inbound, why_not = _inbound(event)
            if inbound is not None:
                messages.append(inbound)
            else:
                skipped[why_not] += 1
    return WebhookResult(messages=messages, note=summarise({k: v for k, v in skipped.items() if v}))


def _inbound(event: IgMessaging) -> tuple[InboundMessage | None, str]:
    if event.message is not None:
        message = event.message
        if message.is_echo:
            return None, "echo"
        if message.is_deleted:
            return None, "deleted message"
        media = [_ATTACHMENT_KINDS.get(a.type, a.type[:40]) for a in message.attachments]
        if message.is_unsupported:
            media.append("unsupported")
        if message.reply_to and message.reply_to.get("story"):
            media.append("story_reply")
        inbound = _lead(event, message.mid, message.text or "", media, message.referral)
        inbound.attachments = _files(message.attachments)
        return inbound, ""
    if event.postback is not None:
        postback = event.postback
        # Postbacks may lack a mid: the sender and the millisecond timestamp identify the tap.
        mid = postback.mid or f"postback:{event.sender.id}:{event.timestamp}"
        return _lead(event, mid, postback.title or "", [], postback.referral), ""
    if event.referral is not None:
        return None, "referral without a message"
    if event.reaction is not None:
        return None, "reaction"
    if event.read is not None:
        return None, "read receipt"
    return None, "other event"


# Attachments that are a file behind a CDN link (shares, reels and stories are links to posts).
_FILE_KINDS = {
    "image": "photo",
    "video": "video",
    "audio": "voice",
    "file": "document",
    "animated_image": "sticker",
}


# Attachments that are posts, not files: staff get their link («вот такой хочу» + a shared post).
_LINK_KINDS = {"share": "share", "ig_reel": "reel", "reel": "reel", "story_mention": "story"}


def _files(attachments: list[IgAttachment]) -> list[MediaRef]:
    """Files by their CDN link (no token needed; it expires on the platform's schedule, so score
    fetches it at once). Shares, reels and story mentions stay links for staff."""
    files = []
    for attachment in attachments:
        url = (attachment.payload or {}).get("url")
        if not isinstance(url, str) or not url:
            continue
        if attachment.type in _FILE_KINDS:
            files.append(MediaRef(kind=_FILE_KINDS[attachment.type], url=url))
        elif attachment.type in _LINK_KINDS:
            title = (attachment.payload or {}).get("title")
            caption = title if isinstance(title, str) and title else None
            files.append(MediaRef(kind=_LINK_KINDS[attachment.type], link=url, caption=caption))
    return files


def _lead(
    event: IgMessaging, mid: str, text: str, media: list[str], referral: IgReferral | None
) -> InboundMessage:
    source, utm = _attribution(referral)
    return InboundMessage(
        message_id=f"instagram:{mid}",
        channel=Channel.instagram,
        chat_id=event.sender.id,
        contact=Contact(channel_user_id=event.sender.id),
        text=text,
        media=media,
        received_at=utc_from_seconds(event.timestamp / 1000),
        source=source,
        utm=utm,
        recipient=f"instagram:{event.recipient.id}" if event.recipient.id else None,
    )


def _attribution(referral: IgReferral | None) -> tuple[str | None, Utm]:
    if referral is None:
        return None, Utm()
    if referral.ad_id or (referral.source or "").upper() == "ADS":
        title = referral.ads_context_data.ad_title if referral.ads_context_data else None
        return "ad", Utm(
            source="instagram", medium="paid", campaign=title or referral.ref, content=referral.ad_id
        )
    if referral.ref:
        return "link", Utm(source="instagram", medium="link", campaign=referral.ref)
    return None, Utm()


# --------------------------------------------------------------------------- sender


class InstagramSender(Sender):
    """Sends text replies (``POST /me/messages``), split into parts of at most 1000 UTF-8 bytes.

    A reply is allowed within 24 hours of the client's last message; outside it Graph answers
    code 10/2018278 and ``send`` raises ``OutsideWindow``.
    """

    channel = Channel.instagram.value

    def __init__(
        self,
        token: str,
        session: requests.Session | None = None,
        base_url: str = DEFAULT_GRAPH_BASE,
        *,
        timeout_s: float = 10.0,
    ):
        self.api = GraphApi(token, session, base_url, timeout_s=timeout_s, product="instagram")

    def __repr__(self) -> str:
        return f"InstagramSender(base_url={self.api.base_url!r})"

    @classmethod
    def from_settings(cls, session: requests.Session | None = None) -> InstagramSender:
        from leadflow.settings import secret, settings

        token = secret("INSTAGRAM_TOKEN")
        if not token:
            raise SendError("INSTAGRAM_TOKEN is not configured", retryable=False)
        return cls(token, session, settings().meta_graph_base)

    def send(self, message: OutboundMessage) -> SendResult:
        parts = split_text(message.text, MAX_TEXT_BYTES, utf8_len)
        if not parts:
            raise SendError("instagram: empty text", retryable=False)
        message_id = ""
        for index, part in enumerate(parts):
            payload = {
                "recipient": {"id": message.to},
                "message": {"text": part},
                "messaging_type": "RESPONSE",
            }
            try:
                answer = self.api.post("me/messages", payload)
            except SendError as exc:
                if index == 0:
                    raise
                reason = f"{exc.reason} (after {index} of {len(parts)} parts were sent)"
                if isinstance(exc, OutsideWindow):
                    raise OutsideWindow(reason) from None
                raise SendError(reason, retryable=exc.retryable, retry_after=exc.retry_after) from None
            if not answer.get("message_id"):
                raise SendError("instagram: answer without a message_id", retryable=False)
            message_id = str(answer["message_id"])
        return SendResult(provider_message_id=message_id, segments=len(parts))
