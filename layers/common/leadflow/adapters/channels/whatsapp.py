"""WhatsApp Cloud API: the webhook (``object: whatsapp_business_account``) and the sender.

One delivery may carry several entries, changes and messages: each client message becomes
one ``InboundMessage`` (``message_id = "whatsapp:<wamid>"``). Status updates, reactions and
system notices are not leads; they are counted in the result's note.

Who the client is. ``from`` is the client's phone (digits, no "+"), and ``contacts[]`` gives
``wa_id`` and ``profile.name``. Since 2026 every message also carries a business-scoped user id
(BSUID, ``contacts[].user_id`` / ``messages[].from_user_id``, such as ``RU.1375802719475431``),
and for a client who adopted a username ``from``/``wa_id`` may be absent. So
``contact.channel_user_id`` is the BSUID when given (it is stable for this business) and the
phone otherwise; ``chat_id`` is what the send API takes to reach the client: ``wa_id`` when
known, else the BSUID (``WhatsAppSender`` puts a BSUID into ``recipient`` instead of ``to``).

Which business number it reached. The contract has no field for ``metadata.phone_number_id``;
it travels in ``business_connection_id`` (its meaning there is the same: "reply as this business
account"), and ``WhatsAppSender`` sends from that number when an outbound message carries it.

Click-to-WhatsApp ads. ``referral`` makes the lead's ``source`` "ad" (or the given
``source_type``), ``page_url`` the ad's ``source_url``, and ``utm``: source "facebook" or
"instagram" (from the URL's host, else "meta"), medium "paid", campaign the ad ``headline``,
content the ad id ``source_id``, term the ``ctwa_clid`` click id (the contract has no field of
its own for it; the CRM keeps it for conversion reporting). ``utm_*`` parameters present in
``source_url`` win.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

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
    normalise_phone,
    route_meta_webhook,
    summarise,
    utc_from_seconds,
)
from leadflow.adapters.channels.toolkit import split_text
from leadflow.adapters.media import Blob
from leadflow.domain.models import Channel, Contact, InboundMessage, MediaRef, OutboundMessage, Utm

if TYPE_CHECKING:
    import requests

__all__ = ["MAX_TEXT", "OutsideWindow", "WhatsAppSender", "handle_webhook", "parse_notification"]

OBJECT = "whatsapp_business_account"
MAX_TEXT = 4096  # text.body: "Maximum 4096 characters"

_MEDIA_KINDS = {
    "image": "photo",
    "video": "video",
    "document": "document",
    "sticker": "sticker",
    "location": "location",
    "contacts": "contact",
    "order": "order",
    "unsupported": "unsupported",
}
_NOT_LEADS = {"reaction": "reaction", "system": "system notice", "request_welcome": "welcome request"}


class _Wa(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class WaProfile(_Wa):
    name: str | None = None
    username: str | None = None


class WaContact(_Wa):
    profile: WaProfile = Field(default_factory=WaProfile)
    wa_id: str | None = None
    user_id: str | None = None


class WaText(_Wa):
    body: str = ""


class WaMedia(_Wa):
    id: str | None = None
    caption: str | None = None
    mime_type: str | None = None
    voice: bool | None = None
    filename: str | None = None


class WaReply(_Wa):
    id: str | None = None
    title: str = ""


class WaInteractive(_Wa):
    type: str = ""
    button_reply: WaReply | None = None
    list_reply: WaReply | None = None


class WaButton(_Wa):
    text: str = ""
    payload: str | None = None


class WaReferral(_Wa):
    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    headline: str | None = None
    ctwa_clid: str | None = None


class WaMessage(_Wa):
    id: str = Field(min_length=1)
    from_: str | None = Field(default=None, alias="from")
    from_user_id: str | None = None
    timestamp: int
    type: str
    text: WaText | None = None
    image: WaMedia | None = None
    video: WaMedia | None = None
    document: WaMedia | None = None
    sticker: WaMedia | None = None
    audio: WaMedia | None = None
    interactive: WaInteractive | None = None
    button: WaButton | None = None
    referral: WaReferral | None = None


class WaMetadata(_Wa):
    phone_number_id: str | None = None
    display_phone_number: str | None = None


class WaValue(_Wa):
    metadata: WaMetadata = Field(default_factory=WaMetadata)
    contacts: list[WaContact] = Field(default_factory=list)
    messages: list[WaMessage] = Field(default_factory=list)
    statuses: list[dict[str, Any]] = Field(default_factory=list)


class WaChange(_Wa):
    field: str = "messages"
    value: WaValue


class WaEntry(_Wa):
    id: str | None = None
    changes: list[WaChange] = Field(default_factory=list)


class WaNotification(_Wa):
    object: str
    entry: list[WaEntry]


# --------------------------------------------------------------------------- webhook


def handle_webhook(request: WebhookRequest) -> WebhookResult:
    """GET: Meta's subscription handshake. POST: a signed delivery (see ``leadflow.adapters.channels.meta``)."""
    return route_meta_webhook(request, parse_notification)


def parse_notification(payload: dict[str, Any]) -> WebhookResult:
    if payload.get("object") != OBJECT:
        return WebhookResult(note=f"unexpected object {str(payload.get('object'))[:40]!r}")
    try:
        notification = WaNotification.model_validate(payload)
    except ValidationError as exc:
        raise WebhookError(400, f"not a WhatsApp notification: {_first_error(exc)}") from None
    messages: list[InboundMessage] = []
    skipped: Counter[str] = Counter()
    for entry in notification.entry:
        for change in entry.changes:
            if change.field != "messages":
                skipped[f"{change.field[:40]} change"] += 1
                continue
            value = change.value
            for status in value.statuses:
                skipped[_status_note(status)] += 1
            for message in value.messages:
                inbound = _inbound(message, value)
                if inbound is None:
                    skipped[_NOT_LEADS.get(message.type, f"{message.type[:40]} message")] += 1
                else:
                    messages.append(inbound)
    return WebhookResult(messages=messages, note=summarise(dict(skipped)))


def _status_note(status: dict[str, Any]) -> str:
    if status.get("status") != "failed":
        return "status update"
    # Cloud API often reports a closed 24-hour window (131047) here, after the send call succeeded.
    errors = status.get("errors")
    if not isinstance(errors, list):
        errors = []
    codes = ",".join(str(e.get("code"))[:10] for e in errors[:3] if isinstance(e, dict))
    return f"failed delivery ({codes or 'no code'})"


def _inbound(message: WaMessage, value: WaValue) -> InboundMessage | None:
    if message.type in _NOT_LEADS:
        return None
    text, media = _content(message)
    if message.type not in _MEDIA_KINDS and message.type not in {"text", "interactive", "button", "audio"}:
        media = ["unsupported"]  # a newer message type: the client still wrote to us
    contact = _contact_for(message, value.contacts)
    wa_id = (contact.wa_id if contact else None) or message.from_
    user_id = message.from_user_id or (contact.user_id if contact else None)
    chat_id = wa_id or user_id
    if not chat_id:
        raise WebhookError(400, "a WhatsApp message names neither a phone nor a user id")
    profile = contact.profile if contact else WaProfile()
    source, utm, page_url = _attribution(message.referral)
    return InboundMessage(
        message_id=f"whatsapp:{message.id}",
        channel=Channel.whatsapp,
        chat_id=chat_id,
        contact=Contact(
            name=profile.name or profile.username,
            phone=normalise_phone(message.from_ or (contact.wa_id if contact else None)),
            channel_user_id=user_id or wa_id,
            phone_verified=True,  # the number WhatsApp delivers from
        ),
        text=text,
        media=media,
        attachments=_attachments(message, media),
        received_at=utc_from_seconds(message.timestamp),
        source=source,
        utm=utm,
        page_url=page_url,
        business_connection_id=value.metadata.phone_number_id,
        recipient=normalise_phone(value.metadata.display_phone_number),
    )


def _content(message: WaMessage) -> tuple[str, list[str]]:
    kind = message.type
    if kind == "text":
        return (message.text.body if message.text else ""), []
    if kind == "interactive" and message.interactive:
        reply = message.interactive.button_reply or message.interactive.list_reply
        return (reply.title if reply else ""), []
    if kind == "button" and message.button:
        return message.button.text, []
    if kind == "audio":
        audio = message.audio or WaMedia()
        # Older payloads lack the ``voice`` flag; a voice note is always OGG/Opus.
        is_voice = audio.voice if audio.voice is not None else "opus" in (audio.mime_type or "")
        return "", ["voice" if is_voice else "audio"]
    if kind in _MEDIA_KINDS:
        media = getattr(message, kind, None)
        caption = media.caption if isinstance(media, WaMedia) else None
        return caption or "", [_MEDIA_KINDS[kind]]
    return "", []


_FILE_TYPES = ("image", "video", "document", "sticker", "audio")


def _attachments(message: WaMessage, media: list[str]) -> list[MediaRef]:
    """The file of a media message, by its media id: score asks the Graph API for it (``GET /<id>``)."""
    if message.type not in _FILE_TYPES:
        return []
    file = getattr(message, message.type, None)
    if not isinstance(file, WaMedia) or not file.id:
        return []
    return [
        MediaRef(
            kind=media[0] if media else message.type,
            file_id=file.id,
            mime_type=file.mime_type,
            file_name=file.filename,
            caption=file.caption,
        )
    ]


def _contact_for(message: WaMessage, contacts: list[WaContact]) -> WaContact | None:
    for contact in contacts:
        if (message.from_ and contact.wa_id == message.from_) or (
            message.from_user_id and contact.user_id == message.from_user_id
        ):
            return contact
    return contacts[0] if len(contacts) == 1 else None


def _attribution(referral: WaReferral | None) -> tuple[str | None, Utm, str | None]:
    if referral is None:
        return None, Utm(), None
    url = referral.source_url
    host = (urlsplit(url).hostname or "") if url else ""
    platform = (
        "instagram"
        if "instagram" in host
        else "facebook"
        if ("fb." in host or "facebook" in host)
        else "meta"
    )
    utm = Utm(
        source=platform,
        medium="paid",
        campaign=referral.headline,
        content=referral.source_id,
        term=referral.ctwa_clid,
    )
    if url:
        given = {k[4:]: v for k, v in parse_qsl(urlsplit(url).query) if k.startswith("utm_") and v}
        utm = utm.model_copy(update={k: v for k, v in given.items() if k in Utm.model_fields})
    return (referral.source_type or "ad"), utm, url


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"


# --------------------------------------------------------------------------- sender


def _is_bsuid(recipient: str) -> bool:
    # A BSUID is "<ISO country>.<alphanumerics>" (RU.1375…, US.ENT.1181…); a phone is digits.
    return len(recipient) > 3 and recipient[:2].isalpha() and recipient[2] == "."


class WhatsAppSender(Sender):
    """Sends text (split at sentence boundaries) and templates through the Cloud API.

    Free text only reaches a client within 24 hours of their last message; outside it the API
    answers 131047 and ``send`` raises ``OutsideWindow``, so the caller can use ``send_template``.
    """

    channel = Channel.whatsapp.value

    def __init__(
        self,
        token: str,
        phone_number_id: str,
        session: requests.Session | None = None,
        base_url: str = DEFAULT_GRAPH_BASE,
        *,
        timeout_s: float = 10.0,
    ):
        self.phone_number_id = phone_number_id
        self.api = GraphApi(token, session, base_url, timeout_s=timeout_s, product="whatsapp")

    def __repr__(self) -> str:
        return f"WhatsAppSender(base_url={self.api.base_url!r})"

    @classmethod
    def from_settings(cls, session: requests.Session | None = None) -> WhatsAppSender:
        from leadflow.settings import secret, settings

        token = secret("WHATSAPP_TOKEN")
        phone_number_id = settings().whatsapp_phone_number_id
        if not token or not phone_number_id:
            raise SendError("WHATSAPP_TOKEN or WHATSAPP_PHONE_NUMBER_ID is not configured", retryable=False)
        return cls(token, phone_number_id, session, settings().meta_graph_base)

    def send(self, message: OutboundMessage) -> SendResult:
        parts = split_text(message.text, MAX_TEXT)
        if not parts:
            raise SendError("whatsapp: empty text", retryable=False)
        sender_number = message.business_connection_id or self.phone_number_id
        wamid = ""
        for index, part in enumerate(parts):
            body: dict[str, Any] = {"type": "text", "text": {"preview_url": False, "body": part}}
            quoted = _wamid(message.reply_to_message_id)
            if index == 0 and quoted:
                body["context"] = {"message_id": quoted}
            try:
                wamid = self._post(sender_number, message.to, body)
            except SendError as exc:
                if index == 0:
                    raise
                # Earlier parts already reached the client; a retry would send them again.
                reason = f"{exc.reason} (after {index} of {len(parts)} parts were sent)"
                if isinstance(exc, OutsideWindow):
                    raise OutsideWindow(reason) from None
                raise SendError(reason, retryable=exc.retryable, retry_after=exc.retry_after) from None
        return SendResult(provider_message_id=wamid, segments=len(parts))

    def send_template(
        self,
        to: str,
        name: str,
        language: str,
        params: Sequence[str] | Mapping[str, str] = (),
        *,
        phone_number_id: str | None = None,
    ) -> SendResult:
        """A pre-approved template: the only thing that reaches a client outside the 24-hour window.

        ``params`` fill the body: a sequence for positional ``{{1}}``…, a mapping for named parameters.
        """
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if isinstance(params, Mapping):
            parameters = [{"type": "text", "parameter_name": k, "text": v} for k, v in params.items()]
        else:
            parameters = [{"type": "text", "text": v} for v in params]
        if parameters:
            template["components"] = [{"type": "body", "parameters": parameters}]
        wamid = self._post(
            phone_number_id or self.phone_number_id, to, {"type": "template", "template": template}
        )
        return SendResult(provider_message_id=wamid, segments=1)

    def _post(self, phone_number_id: str, to: str, body: dict[str, Any]) -> str:
        payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
        payload["recipient" if _is_bsuid(to) else "to"] = to
        payload.update(body)
        answer = self.api.post(f"{phone_number_id}/messages", payload)
        sent = answer.get("messages")
        if not (isinstance(sent, list) and sent and isinstance(sent[0], dict) and sent[0].get("id")):
            raise SendError("whatsapp: answer without a message id", retryable=False)
        return str(sent[0]["id"])


def _wamid(reply_to: str | None) -> str | None:
    if not reply_to:
        return None
    wamid = reply_to.removeprefix("whatsapp:")
    return wamid if wamid.startswith("wamid.") else None


# --------------------------------------------------------------------------- fetching clients' files


class WhatsAppMediaFetcher:
    """``GET /<media id>`` (its URL lives five minutes), then the URL itself — both with the token.

    A download that fails with 404 gets a fresh URL once, as Meta advises. ``file_size`` comes as a
    string or a number."""

    def __init__(
        self,
        token: str,
        phone_number_id: str | None = None,
        session: requests.Session | None = None,
        base_url: str = DEFAULT_GRAPH_BASE,
        *,
        timeout_s: float = 10.0,
    ):
        self.phone_number_id = phone_number_id
        self.api = GraphApi(token, session, base_url, timeout_s=timeout_s, product="whatsapp media")

    def fetch(self, ref: MediaRef, max_bytes: int, *, within_s: float | None = None) -> Blob:
        import time

        from leadflow.adapters.media import MediaTooBig, MediaUnavailable, download

        deadline = None if within_s is None else time.monotonic() + within_s

        if not ref.file_id:
            raise MediaUnavailable("whatsapp media: no media id")
        for attempt in range(2):
            params = {"phone_number_id": self.phone_number_id} if self.phone_number_id else {}
            try:
                info = self.api.get(ref.file_id, params)
            except SendError as exc:
                raise MediaUnavailable(exc.reason) from None
            size = str(info.get("file_size") or "")
            if size.isdigit() and int(size) > max_bytes:
                raise MediaTooBig(f"whatsapp media: {size} bytes")
            url = info.get("url")
            if not isinstance(url, str) or not url:
                raise MediaUnavailable("whatsapp media: answer without a url")
            try:
                blob = download(
                    self.api.session,
                    url,
                    max_bytes=max_bytes,
                    what="whatsapp media",
                    headers=self.api.bearer(),
                    within_s=None if deadline is None else deadline - time.monotonic(),
                )
            except MediaUnavailable as exc:
                if attempt == 0 and "HTTP 404" in str(exc):
                    continue  # the URL expired between the two calls: a new one
                raise
            mime = ref.mime_type or info.get("mime_type") or blob.mime_type
            return Blob(blob.data, mime, ref.file_name)
        raise MediaUnavailable("whatsapp media: the download kept failing")
