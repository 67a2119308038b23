"""SMS channel: segment counting, opt-out detection, sending policy, provider webhooks, sender.

Webhook authentication (fail closed: an unset secret refuses everything with 403):
- ``smsru``: SMS.ru signs each callback with ``hash = sha256(api_id + data[0] + data[1] + …)``;
  the api_id is secret ``SMS_API_KEY``. SMS.ru treats any answer but the body ``100`` as a
  failure of the handler, so every accepted callback is answered ``100``.
- ``smsc``: SMSC.ru callbacks are checked by a ``secret`` query parameter equal to
  ``SMS_API_KEY`` (the handler URL is configured in the SMSC cabinet with it). We could not
  confirm SMSC's own signature formula from its documentation, so we do not rely on it.
- ``aws``: two-way SMS and delivery events arrive through an SNS HTTPS subscription; SNS
  signatures need the signing certificate fetched over the network, so the subscription URL
  carries the ``secret`` query parameter instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl

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
from leadflow.domain.models import Contact, InboundMessage, OutboundMessage

if TYPE_CHECKING:
    from leadflow.adapters.channels.sms_providers import SmsProvider

# --------------------------------------------------------------------------- segments

# GSM 03.38 default alphabet (without the escape code 0x1B) and its extension table; an
# extension character is sent as escape + character, so it costs two septets.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153  # septets; a concatenated part loses 7 to its header
UCS2_SINGLE, UCS2_MULTI = 70, 67  # UTF-16 code units


@dataclass(frozen=True)
class SegmentInfo:
    encoding: Literal["GSM-7", "UCS-2"]
    segments: int
    chars_per_segment: int
    units: int = 0  # septets (GSM-7) or UTF-16 code units (UCS-2) in the whole text


def _gsm7_units(text: str) -> list[int] | None:
    units = []
    for char in text:
        if char in GSM7_BASIC:
            units.append(1)
        elif char in GSM7_EXTENSION:
            units.append(2)
        else:
            return None
    return units


def _pack(units: list[int], capacity: int) -> int:
    """Parts needed when a character (escape pair, surrogate pair) is never split across parts."""
    parts, used = 1, 0
    for size in units:
        if used + size > capacity:
            parts, used = parts + 1, 0
        used += size
    return parts


def count_segments(text: str) -> SegmentInfo:
    """How many SMS parts ``text`` takes, exactly as a handset or SMSC splits it.

    GSM-7 when every character is in the default alphabet or its extension table (extension
    characters count 2), else UCS-2 where a character outside the BMP (emoji) is a surrogate
    pair of 2 units. One part holds 160 septets / 70 units; a longer text is cut into parts of
    153 / 67 and a 2-unit character never straddles two parts. An empty text is one (empty) part.
    """
    gsm = _gsm7_units(text)
    if gsm is not None:
        total = sum(gsm)
        if total <= GSM7_SINGLE:
            return SegmentInfo("GSM-7", 1, GSM7_SINGLE, total)
        return SegmentInfo("GSM-7", _pack(gsm, GSM7_MULTI), GSM7_MULTI, total)
    ucs = [2 if ord(char) > 0xFFFF else 1 for char in text]
    total = sum(ucs)
    if total <= UCS2_SINGLE:
        return SegmentInfo("UCS-2", 1, UCS2_SINGLE, total)
    return SegmentInfo("UCS-2", _pack(ucs, UCS2_MULTI), UCS2_MULTI, total)


# Typographic characters a template may contain that have a plain GSM-7 equivalent.
_GSM_LOOKALIKES = str.maketrans(
    {
        "«": '"',
        "»": '"',
        "„": '"',
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "—": "-",
        "–": "-",
        "…": "...",
        "\u00a0": " ",
        "\t": " ",
    }
)


def fit_one_segment(text: str) -> str:
    """Shorten a text (a reminder whose template allows it) so that it is sent as one SMS part.

    The rule, in order, stopping as soon as the text fits one part:
    1. the text as it is;
    2. collapsed whitespace (runs of spaces and line breaks become one space);
    3. typographic quotes, dashes, ellipsis and no-break spaces replaced by their GSM-7
       equivalents — only when that makes the whole text GSM-7 (160 instead of 70 characters);
    4. cut at the last word boundary that fits (or inside the word when the boundary would
       lose more than half the room) and end with an ellipsis: ``…`` in UCS-2, ``...`` in GSM-7.
    """
    if count_segments(text).segments == 1:
        return text
    text = " ".join(text.split())
    if count_segments(text).segments == 1:
        return text
    plain = text.translate(_GSM_LOOKALIKES)
    if _gsm7_units(plain) is not None:
        text = plain
        if count_segments(text).segments == 1:
            return text
    info = count_segments(text)
    ellipsis = "..." if info.encoding == "GSM-7" else "…"
    budget = (GSM7_SINGLE if info.encoding == "GSM-7" else UCS2_SINGLE) - count_segments(ellipsis).units
    used, cut = 0, 0
    for index, char in enumerate(text):
        size = count_segments(char).units
        if used + size > budget:
            break
        used += size
        cut = index + 1
    head = text[:cut]
    boundary = head.rfind(" ")
    if boundary >= cut // 2:
        head = head[:boundary]
    return head.rstrip(" ,;:-—–") + ellipsis


# --------------------------------------------------------------------------- opt-out

# Whole-message intent: after dropping politeness and filler words, every word left must be
# part of an opt-out phrase. «Стоп, а сколько стоит стрижка?» keeps «а сколько стоит стрижка»
# and is therefore not an opt-out; «СТОП!!!», «Не пишите мне больше, спасибо» are.
# «Отмена» / «cancel» are deliberately absent: clients use them to cancel an appointment.
_OPT_OUT_PHRASES: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        (
            tuple(p.split())
            for p in (
                "стоп",
                "stop",
                "stopall",
                "stop all",
                "unsubscribe",
                "opt out",
                "optout",
                "отписаться",
                "отписка",
                "отпишите",
                "отпиши",
                "хочу отписаться",
                "не пишите",
                "не присылайте",
                "не отправляйте",
                "не беспокойте",
                "не надо писать",
                "хватит писать",
                "хватит присылать",
                "хватит",
                "удалите номер",
                "удалите из рассылки",
                "do not text",
                "dont text",
                "don t text",
            )
        ),
        key=len,
        reverse=True,
    )
)
_FILLER = frozenset(
    {
        "пожалуйста",
        "плиз",
        "мне",
        "меня",
        "мой",
        "больше",
        "спасибо",
        "сюда",
        "смс",
        "sms",
        "сообщения",
        "сообщений",
        "рассылку",
        "рассылки",
        "эти",
        "этот",
        "от",
        "вас",
        "нам",
        "уже",
        "все",
        "please",
        "me",
        "my",
        "thanks",
        "thank",
        "you",
        "to",
        "from",
        "messages",
        "the",
        "any",
        "more",
    }
)
_WORD = re.compile(r"[^\W_]+")


def is_opt_out(text: str) -> bool:
    """True when the whole message asks to stop receiving SMS (case and punctuation ignored)."""
    words = [w for w in _WORD.findall(text.lower().replace("ё", "е")) if w not in _FILLER]
    if not words:
        return False
    position = 0
    while position < len(words):
        for phrase in _OPT_OUT_PHRASES:
            if tuple(words[position : position + len(phrase)]) == phrase:
                position += len(phrase)
                break
        else:
            return False
    return True


# --------------------------------------------------------------------------- policy

# Transactional: the client's own request or appointment. Marketing needs prior consent
# (advertising by phone/SMS requires the recipient's consent, 38-ФЗ art. 18). A "nudge" (T+1/T+3
# follow-up to a lead that did not book) is counted as marketing: it promotes a sale the client
# did not ask to be reminded of, and a wrongly sent nudge costs more than a missed one.
TRANSACTIONAL_KINDS = frozenset({"reply", "reminder", "missed_call", "staff_reply"})
MARKETING_KINDS = frozenset({"winback", "nurture", "nudge"})


@dataclass(frozen=True)
class PolicyDecision:
    action: Literal["send", "wait", "refuse"]
    send_at: datetime | None
    reason: str


def _quiet_until(now_local: datetime, quiet_start: time, quiet_end: time) -> datetime | None:
    """End of the quiet window that contains ``now_local``; None when outside it (or no window)."""
    if quiet_start == quiet_end:
        return None
    clock = now_local.time().replace(tzinfo=None)
    today = now_local.date()
    if quiet_start < quiet_end:  # e.g. 13:00-15:00 within one day
        if quiet_start <= clock < quiet_end:
            return datetime.combine(today, quiet_end, tzinfo=now_local.tzinfo)
        return None
    if clock >= quiet_start:  # evening part of a window that crosses midnight
        return datetime.combine(today + timedelta(days=1), quiet_end, tzinfo=now_local.tzinfo)
    if clock < quiet_end:  # morning part
        return datetime.combine(today, quiet_end, tzinfo=now_local.tzinfo)
    return None


def sms_policy(
    kind: str,
    *,
    opted_out: bool,
    marketing_consent: bool,
    now_local: datetime,
    quiet_start: time,
    quiet_end: time,
) -> PolicyDecision:
    """Whether to send an SMS of ``kind`` now, later (``send_at``) or never.

    An opt-out refuses everything. Transactional kinds go out at once, quiet hours included:
    a reply or missed-call text answers something the client did a moment ago, and a reminder's
    time is chosen by the reminder plan. Marketing kinds need consent and wait for the end of the
    quiet window (which may cross midnight). Unknown kinds are refused so that a new kind is
    classified on purpose, not by accident.
    """
    if opted_out:
        return PolicyDecision("refuse", None, "opted out")
    if kind in TRANSACTIONAL_KINDS:
        return PolicyDecision("send", now_local, "transactional")
    if kind not in MARKETING_KINDS:
        return PolicyDecision("refuse", None, f"unknown sms kind {kind!r}")
    if not marketing_consent:
        return PolicyDecision("refuse", None, "no marketing consent")
    until = _quiet_until(now_local, quiet_start, quiet_end)
    if until is not None:
        return PolicyDecision("wait", until, "quiet hours")
    return PolicyDecision("send", now_local, "marketing with consent")


# --------------------------------------------------------------------------- webhook

SmsStatusValue = Literal["delivered", "failed", "pending"]
PROVIDERS = ("smsru", "smsc", "aws")


@dataclass(frozen=True)
class SmsStatus:
    provider_message_id: str
    status: SmsStatusValue
    error: str | None = None  # provider's code, log-safe (never the phone or the text)


@dataclass
class SmsWebhookResult(WebhookResult):
    statuses: list[SmsStatus] = field(default_factory=list)
    opt_outs: list[str] = field(default_factory=list)  # E.164 phones whose message was an opt-out


# SMS.ru delivery codes (sms/status and callbacks): 100-102 queued/in transit, 103 delivered,
# 104-108 and 150 not delivered, 110 read (Viber).
def smsru_status(code: int) -> SmsStatusValue:
    if code in (103, 110):
        return "delivered"
    if code in (104, 105, 106, 107, 108, 150) or code < 0:
        return "failed"
    return "pending"


# SMSC.ru status.php codes: -1 waiting, 0 at the operator, 1 delivered, 2 read, 4 link opened,
# 3 expired, 20 cannot be delivered, 22 bad number, 23 prohibited, 24 no money, 25 unavailable.
def smsc_status(code: int) -> SmsStatusValue:
    if code in (1, 2, 4):
        return "delivered"
    if code == 3 or code >= 20:
        return "failed"
    return "pending"


# AWS End User Messaging SMS event types (event destination → SNS).
_AWS_PENDING = {"TEXT_PENDING", "TEXT_QUEUED", "TEXT_SUCCESSFUL"}


def aws_status(event_type: str) -> SmsStatusValue:
    if event_type == "TEXT_DELIVERED":
        return "delivered"
    if event_type in _AWS_PENDING:
        return "pending"
    return "failed"


def _e164(raw: str) -> str:
    import phonenumbers

    digits = raw.strip()
    candidate = digits if digits.startswith("+") else "+" + digits
    try:
        number = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        raise WebhookError(400, "sender is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise WebhookError(400, "sender is not a phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _from_timestamp(raw: object, fallback: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(float(str(raw)), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return fallback


def _form(request: WebhookRequest) -> dict[str, str]:
    try:
        fields = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise WebhookError(400, "body is not UTF-8") from None
    # SMSC may call the handler with GET: the fields are then in the query string.
    return {**{k: v for k, v in request.query.items() if k not in ("provider", "secret")}, **fields}


def _inbound(provider: str, provider_id: str, phone: str, text: str, received_at: datetime) -> InboundMessage:
    return InboundMessage(
        message_id=f"sms:{provider}:{provider_id}",
        channel="sms",
        chat_id=phone,
        contact=Contact(phone=phone, channel_user_id=phone),
        text=text,
        received_at=received_at,
    )


def _handle_smsru(request: WebhookRequest, result: SmsWebhookResult, now: datetime) -> None:
    form = _form(request)
    entries = sorted(
        ((int(m.group(1)), v) for k, v in form.items() if (m := re.fullmatch(r"data\[(\d+)\]", k))),
        key=lambda item: item[0],
    )
    api_id = _secret("SMS_API_KEY")
    if not api_id:
        raise WebhookError(403, "SMS_API_KEY is not configured: channel refuses all requests")
    expected = hashlib.sha256((api_id + "".join(v for _, v in entries)).encode()).hexdigest()
    if not hmac.compare_digest(expected, form.get("hash", "")):
        raise WebhookError(403, "sms.ru callback hash does not match")
    for _, entry in entries:
        lines = entry.replace("\r", "").split("\n")
        if lines[0] == "sms_status" and len(lines) >= 3:
            try:
                code = int(lines[2])
            except ValueError:
                raise WebhookError(400, "sms.ru status code is not a number") from None
            status = smsru_status(code)
            result.statuses.append(SmsStatus(lines[1], status, None if status != "failed" else str(code)))
    # Any answer but "100" makes SMS.ru consider the handler broken and retry.
    result.body = "100"


def _handle_smsc(request: WebhookRequest, result: SmsWebhookResult, now: datetime) -> None:
    require_secret(_secret("SMS_API_KEY"), request.query.get("secret"), "SMS_API_KEY")
    form = _form(request)
    if "mes" in form:
        provider_id = form.get("id") or form.get("sms_id")
        if not provider_id or not form.get("phone"):
            raise WebhookError(400, "smsc inbound sms without id or phone")
        phone = _e164(form["phone"])
        received = _from_timestamp(form.get("sent") or form.get("time"), now)
        result.messages.append(_inbound("smsc", provider_id, phone, form["mes"], received))
    elif "status" in form:
        if not form.get("id"):
            raise WebhookError(400, "smsc status without id")
        try:
            code = int(form["status"])
        except ValueError:
            raise WebhookError(400, "smsc status is not a number") from None
        status = smsc_status(code)
        error = form.get("err") if status == "failed" else None
        result.statuses.append(
            SmsStatus(form["id"], status, error or (str(code) if status == "failed" else None))
        )
    else:
        raise WebhookError(400, "smsc callback is neither an inbound sms nor a status")


def _handle_aws(request: WebhookRequest, result: SmsWebhookResult, now: datetime) -> None:
    require_secret(_secret("SMS_API_KEY"), request.query.get("secret"), "SMS_API_KEY")
    try:
        envelope = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise WebhookError(400, "sns body is not JSON") from None
    if not isinstance(envelope, dict):
        raise WebhookError(400, "sns body is not an object")
    kind = envelope.get("Type")
    if kind == "SubscriptionConfirmation":
        # Confirming means fetching SubscribeURL; a handler makes no outbound calls, so the
        # operator confirms the subscription once (console or CLI).
        result.note = "sns subscription confirmation: confirm it in the SNS console"
        return
    if kind != "Notification":
        raise WebhookError(400, "unsupported sns message type")
    try:
        payload = json.loads(envelope.get("Message") or "null")
    except ValueError:
        raise WebhookError(400, "sns message is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookError(400, "sns message is not an object")
    sent_at = envelope.get("Timestamp")
    if "messageBody" in payload and "originationNumber" in payload:
        provider_id = payload.get("inboundMessageId")
        if not provider_id:
            raise WebhookError(400, "aws inbound sms without inboundMessageId")
        try:
            received = datetime.fromisoformat(str(sent_at).replace("Z", "+00:00")) if sent_at else now
        except ValueError:
            received = now
        if received.tzinfo is None:
            received = received.replace(tzinfo=UTC)
        phone = _e164(str(payload["originationNumber"]))
        result.messages.append(_inbound("aws", provider_id, phone, str(payload["messageBody"]), received))
    elif str(payload.get("eventType", "")).startswith("TEXT_") and payload.get("messageId"):
        event_type = str(payload["eventType"])
        status = aws_status(event_type)
        result.statuses.append(
            SmsStatus(str(payload["messageId"]), status, event_type if status == "failed" else None)
        )
    else:
        raise WebhookError(400, "sns message is neither an inbound sms nor a delivery event")


_HANDLERS: dict[str, Callable[[WebhookRequest, SmsWebhookResult, datetime], None]] = {
    "smsru": _handle_smsru,
    "smsc": _handle_smsc,
    "aws": _handle_aws,
}


def _secret(name: str) -> str | None:
    from leadflow.settings import secret

    return secret(name)


def handle_webhook(request: WebhookRequest, *, now: Callable[[], datetime] | None = None) -> SmsWebhookResult:
    """``/webhooks/sms``: inbound SMS become InboundMessages, delivery reports become ``statuses``."""
    from leadflow.settings import settings

    provider = request.query.get("provider") or settings().sms_provider
    if not provider:
        raise WebhookError(403, "SMS_PROVIDER is not configured: channel refuses all requests")
    handler = _HANDLERS.get(provider)
    if handler is None:
        raise WebhookError(400, "unknown sms provider")
    if request.method.upper() not in ("POST", "GET"):
        raise WebhookError(405, "method not allowed")
    result = SmsWebhookResult()
    handler(request, result, (now or (lambda: clock.now()))())
    result.opt_outs = [m.chat_id for m in result.messages if is_opt_out(m.text)]
    if not result.messages:
        result.note = result.note or (
            f"{len(result.statuses)} delivery status(es)" if result.statuses else "nothing to take"
        )
    return result


# --------------------------------------------------------------------------- sender


class SmsSender(Sender):
    """Sends an OutboundMessage through one provider adapter. Policy (opt-out, consent, quiet
    hours) is the caller's job via ``sms_policy``; this class only moves the message."""

    channel = "sms"

    def __init__(self, provider: SmsProvider, *, sender: str | None = None):
        self.provider = provider
        self.sender = sender

    def send(self, message: OutboundMessage) -> SendResult:
        """Raises SendError; ``UnknownOutcome`` after a timeout means: call ``confirm`` before any retry."""
        phone = _outbound_phone(message.to)
        result = self.provider.send(
            phone,
            message.text,
            sender=self.sender,
            idempotency_key=message.id,
            promotional=message.kind in MARKETING_KINDS,
        )
        return SendResult(provider_message_id=result.message_id, segments=result.segments, cost=result.cost)

    def confirm(self, message: OutboundMessage) -> SendResult | None:
        """After ``UnknownOutcome``: the send if the provider has it, None if it surely has not.

        Raises ``ProviderCannotQuery`` (not retryable) for providers that cannot be asked by our
        key: the message must then be treated as possibly sent, never resent automatically.
        """
        found = self.provider.check_sent(message.id, phone_e164=_outbound_phone(message.to))
        if found is None:
            return None
        return SendResult(provider_message_id=found.message_id, segments=found.segments, cost=found.cost)


def _outbound_phone(raw: str) -> str:
    import phonenumbers

    try:
        number = phonenumbers.parse(raw if raw.startswith("+") else "+" + raw, None)
    except phonenumbers.NumberParseException:
        raise SendError("invalid phone number", retryable=False) from None
    if not phonenumbers.is_valid_number(number):
        raise SendError("invalid phone number", retryable=False)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
