"""SMS channel: provider webhooks (replies, opt-outs, delivery reports) and the sender.

Webhook authentication (fail closed: 403 for everything while a secret or SMS_PROVIDER is unset):
- every provider: ``POST …/webhooks/sms?secret=<SMS_WEBHOOK_SECRET>``. The secret is the
  webhook's own — never a provider credential (SMSC's was its account password) — and the
  callback is read as SMS_PROVIDER's: a ``?provider=`` that names another provider is refused
  (403), so a caller cannot pick the provider whose check is weakest. POST only: a GET would put
  the phone and the text in the URL, and so in every access log (405).
- ``smsru``: also SMS.ru's own ``hash = sha256(api_id + data[0] + data[1] + …)``, the api_id
  being ``SMS_API_KEY``. SMS.ru treats any answer but the body ``100`` as a failure of the
  handler, so every accepted callback is answered ``100``.
- ``smsc``: the URL secret alone. We could not confirm SMSC's own signature formula from its
  documentation, so we do not rely on it. Set the callback method to POST in the SMSC cabinet.
- ``aws``: two-way SMS and delivery events come through an SNS HTTPS subscription to the URL
  with its secret, and each SNS message's signature is verified (``sns.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
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
from leadflow.adapters.channels.sms_providers import SmsStatus, aws_status, smsc_status, smsru_status
from leadflow.domain.models import Contact, InboundMessage, OutboundMessage
from leadflow.domain.phones import to_e164
from leadflow.domain.sms import MARKETING_KINDS, is_opt_out

if TYPE_CHECKING:
    from leadflow.adapters.channels.sms_providers import SmsProvider

# --------------------------------------------------------------------------- webhook

PROVIDERS = ("smsru", "smsc", "aws")


@dataclass
class SmsWebhookResult(WebhookResult):
    statuses: list[SmsStatus] = field(default_factory=list)
    opt_outs: list[str] = field(default_factory=list)  # E.164 phones whose message was an opt-out


def _e164(raw: str) -> str:
    phone = to_e164(raw, region=None, strict=False, platform=True)
    if phone is None:
        raise WebhookError(400, "sender is not a phone number")
    return phone


def _from_timestamp(raw: object, fallback: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(float(str(raw)), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return fallback


def _form(request: WebhookRequest) -> dict[str, str]:
    try:
        return dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise WebhookError(400, "body is not UTF-8") from None


def _inbound(provider: str, provider_id: str, phone: str, text: str, received_at: datetime) -> InboundMessage:
    return InboundMessage(
        message_id=f"sms:{provider}:{provider_id}",
        channel="sms",
        chat_id=phone,
        contact=Contact(phone=phone, channel_user_id=phone, phone_verified=True),
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
    from leadflow.adapters.channels import sns

    try:
        envelope = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise WebhookError(400, "sns body is not JSON") from None
    if not isinstance(envelope, dict):
        raise WebhookError(400, "sns body is not an object")
    sns.verifier().verify(envelope)
    kind = envelope.get("Type")
    if kind == "SubscriptionConfirmation":
        # Confirming means calling SubscribeURL; the handler does not act on a request's URLs,
        # so the operator confirms the subscription once (console or CLI).
        result.note = "sns subscription confirmation: confirm it in the SNS console"
        return
    if kind == "UnsubscribeConfirmation":
        result.note = "sns unsubscribe confirmation: the subscription was removed"
        return
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

    if request.method.upper() != "POST":
        raise WebhookError(405, f"sms webhook accepts POST, got {request.method[:10]!r}")
    provider = (settings().sms_provider or "").strip().lower()
    if not provider:
        raise WebhookError(403, "SMS_PROVIDER is not configured: channel refuses all requests")
    handler = _HANDLERS.get(provider)
    if handler is None:
        raise WebhookError(403, "SMS_PROVIDER names no provider whose callbacks we read")
    named = request.query.get("provider")
    if named is not None and named.strip().lower() != provider:
        raise WebhookError(403, "?provider= is not SMS_PROVIDER: refused")
    require_secret(_secret("SMS_WEBHOOK_SECRET"), request.query.get("secret"), "SMS_WEBHOOK_SECRET")
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
    phone = to_e164(raw, region=None, platform=True)
    if phone is None:
        raise SendError("invalid phone number", retryable=False)
    return phone
