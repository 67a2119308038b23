"""Deliveries for the ingest handler, built from events/** the way each platform sends them."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from leadflow import clock
from leadflow.adapters.channels.meta import sign_meta_body
from leadflow_local.functions import invoke
from leadflow_local.stack import api_gateway_event

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
# The development values events/** were made with (events/README.md, events/vk, test_sms.py).
SECRETS = {
    "TELEGRAM_WEBHOOK_SECRET": "dev-telegram-secret",
    "META_APP_SECRET": "dev-meta-app-secret",
    "META_VERIFY_TOKEN": "dev-meta-verify-token",
    "VK_SECRET": "Xk3vN8qLw2Rz",
    "VK_CONFIRMATION_CODE": "dev-vk-confirmation",
    "FORM_SECRET": "dev-form-secret",
    "CALL_SECRET": "dev-call-secret",
    "BITRIX24_APP_TOKEN": "dev-b24-app-token",
    "SMS_API_KEY": "dev-sms-key",  # SMS.ru's api_id: its callbacks' hash is made with it
    "SMS_WEBHOOK_SECRET": "dev-sms-webhook-secret",
    "AMOCRM_WEBHOOK_SECRET": "dev-amocrm-webhook-secret",
}
# Which secret each channel fails closed without.
CHANNEL_SECRET = {
    "telegram": "TELEGRAM_WEBHOOK_SECRET", "whatsapp": "META_APP_SECRET", "instagram": "META_APP_SECRET",
    "vk": "VK_SECRET", "form": "FORM_SECRET", "call": "CALL_SECRET", "sms": "SMS_WEBHOOK_SECRET",
    "bitrix24": "BITRIX24_APP_TOKEN", "amocrm": "AMOCRM_WEBHOOK_SECRET",
}  # fmt: skip
RAW_CHANNELS = ("telegram", "whatsapp", "instagram", "vk")  # events/<these> hold platform bodies
GATEWAY_DIRS = ("form", "call", "sms", "bitrix24", "ingest")  # events/<these> are API Gateway events
SOURCE_IP = "203.0.113.7"


def sample_files() -> list[Path]:
    return sorted(p for d in (*RAW_CHANNELS, *GATEWAY_DIRS) for p in (EVENTS / d).glob("*.json"))


def sample_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def sms_provider_of(path: Path) -> str | None:
    """The SMS_PROVIDER an events/sms sample needs: the provider its name ends with."""
    provider = path.stem.rsplit("_", 1)[-1]
    return provider if path.parent.name == "sms" and provider in ("smsru", "smsc", "aws") else None


def post(channel: str, body: bytes, headers: dict[str, str] | None = None, query: str = "") -> dict:
    return api_gateway_event("POST", f"/webhooks/{channel}", query, headers or {}, body, SOURCE_IP)


def platform_headers(channel: str, body: bytes) -> dict[str, str]:
    """What the platform itself puts on a delivery of ``body`` (signed with SECRETS)."""
    headers = {"content-type": "application/json"}
    if channel == "telegram":
        headers["x-telegram-bot-api-secret-token"] = SECRETS["TELEGRAM_WEBHOOK_SECRET"]
    if channel in ("whatsapp", "instagram"):
        headers["x-hub-signature-256"] = sign_meta_body(body, SECRETS["META_APP_SECRET"])
    return headers


def delivery(path: Path) -> dict:
    """The API Gateway event for one sample, as its platform would send it now: as stored (or the
    raw body as its platform posts it), with the send time a platform stamps on it made current."""
    if path.parent.name in GATEWAY_DIRS:
        return sent_now(copy.deepcopy(json.loads(path.read_text(encoding="utf-8"))))
    body = path.read_bytes()
    return post(path.parent.name, body, platform_headers(path.parent.name, body))


def sent_now(event: dict) -> dict:
    """A recorded delivery re-stamped with the current (wall) time where the receiver checks it:
    Bitrix24's ``ts``; Zadarma's ``call_start`` (Moscow time, the default CALL_TIMEZONE), signed
    again; an SNS message's ``Timestamp``, signed with the tests' SNS key (tests/support/sns.py)."""
    now = clock.wall_now()
    if channel_of(event) == "bitrix24":
        body = re.sub(r"(^|&)ts=\d+", rf"\g<1>ts={int(now.timestamp())}", str(event["body"]))
        event["body"] = body
    query = event.get("queryStringParameters") or {}
    if channel_of(event) == "call" and query.get("provider") == "zadarma" and event.get("body"):
        fields = dict(parse_qsl(str(event["body"]), keep_blank_values=True))
        fields["call_start"] = now.astimezone(ZoneInfo("Europe/Moscow")).strftime("%Y-%m-%d %H:%M:%S")
        event["body"] = urlencode(fields)
        event["headers"]["signature"] = zadarma_signature(fields)
    if channel_of(event) == "sms" and str(event.get("body") or "").startswith("{"):
        from tests.support import sns

        message = json.loads(event["body"])
        message["Timestamp"] = now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        signed = sns.signed(message, version=message["SignatureVersion"], cert_url=message["SigningCertURL"])
        event["body"] = json.dumps(signed, ensure_ascii=False)
    return event


# Zadarma's signed fields per event (its official PHP client, lib/Webhook/*.php)
ZADARMA_SIGNED = {
    "NOTIFY_START": ("caller_id", "called_did", "call_start"),
    "NOTIFY_END": ("caller_id", "called_did", "call_start"),
    "NOTIFY_OUT_END": ("internal", "destination", "call_start"),
}


def zadarma_signature(fields: dict[str, str], secret: str = SECRETS["CALL_SECRET"]) -> str:
    """base64 of the hex HMAC-SHA1 (PHP's hash_hmac) of the event's signed fields."""
    string = "".join(fields.get(name, "") for name in ZADARMA_SIGNED[fields["event"]])
    digest = hmac.new(secret.encode(), string.encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(digest.encode()).decode()


def channel_of(event: dict) -> str:
    return str(event["rawPath"]).rstrip("/").split("/")[-1]


def body_of(event: dict) -> bytes:
    return str(event.get("body") or "").encode("utf-8")


def ingest(event: dict) -> dict[str, Any]:
    """The handler's answer, with the header we look at lower-cased."""
    answer = invoke("ingest", event)
    headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
    return {
        "status": answer["statusCode"],
        "body": answer.get("body", ""),
        "content_type": headers.get("content-type"),
    }


def changed(
    event: dict,
    *,
    headers: dict[str, str | None] | None = None,
    query: dict[str, str | None] | None = None,
    body: bytes | None = None,
) -> dict:
    """A copy of ``event`` with headers/query entries set (None removes one) or another body."""
    out = copy.deepcopy(event)
    hdrs = {k.lower(): v for k, v in (out.get("headers") or {}).items()}
    for name, value in (headers or {}).items():
        hdrs.pop(name.lower(), None) if value is None else hdrs.__setitem__(name.lower(), value)
    out["headers"] = hdrs
    params = dict(out.get("queryStringParameters") or {})
    for name, value in (query or {}).items():
        params.pop(name, None) if value is None else params.__setitem__(name, value)
    out["queryStringParameters"] = params or None
    out["rawQueryString"] = urlencode(params)
    if body is not None:
        out["body"], out["isBase64Encoded"] = body.decode("utf-8"), False
    return out
