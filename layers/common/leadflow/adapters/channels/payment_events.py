"""ЮKassa payment notifications (``/webhooks/payment``): the prepayment page was paid.

The body is ЮKassa's notification: ``{"type": "notification", "event": "payment.succeeded",
"object": {"id", "status", "amount": {"value", "currency"}, "metadata": {"lead_id"}, …}}``.
ЮKassa does not sign notifications; its documentation offers two checks of a notification's
origin, and both are used: here, the sender's address must be in ЮKassa's published ranges
(``PAYMENT_WEBHOOK_IPS``, default ``settings.YOOKASSA_IPS`` — the list changes rarely, keep it in step with
yookassa.ru/developers/using-api/webhooks); and the consumer re-reads the payment by id from the
ЮKassa API (with ``YOOKASSA_SHOP_ID``/``YOOKASSA_SECRET_KEY``) and believes only that answer.
Without those credentials only the address check stands (see the README's limits).
"""

from __future__ import annotations

import ipaddress
import json
import re

from leadflow import clock
from leadflow.adapters.channels.base import WebhookError, WebhookRequest, WebhookResult
from leadflow.domain.models import CrmEvent

USED_EVENTS = {"payment.succeeded"}
PAYMENT_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
LEAD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def trusted_sender(source_ip: str | None, allowed: str) -> bool:
    """Whether ``source_ip`` is in one of the comma-separated networks; a malformed address or
    network never lets anything in."""
    try:
        address = ipaddress.ip_address((source_ip or "").strip())
    except ValueError:
        return False
    for network in (part.strip() for part in allowed.split(",")):
        try:
            if network and address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def handle_webhook(request: WebhookRequest) -> WebhookResult:
    from leadflow.settings import settings

    if not trusted_sender(request.source_ip, settings().payment_webhook_ips):
        raise WebhookError(403, "payment notification from an address outside PAYMENT_WEBHOOK_IPS")
    if request.method.upper() != "POST":
        raise WebhookError(405, f"payment webhook accepts POST, got {request.method[:10]!r}")
    try:
        payload = json.loads(request.body or b"null")
    except ValueError:
        raise WebhookError(400, "payment body is not valid JSON") from None
    if not isinstance(payload, dict) or payload.get("type") != "notification":
        raise WebhookError(400, "payment body is not a ЮKassa notification")
    event = str(payload.get("event") or "")
    if event not in USED_EVENTS:
        return WebhookResult(note=f"payment event {event[:30]!r} not used")
    payment = payload.get("object")
    if not isinstance(payment, dict):
        raise WebhookError(400, "payment notification without its object")
    payment_id = str(payment.get("id") or "")
    metadata = payment.get("metadata")
    lead_id = str(metadata.get("lead_id") or "") if isinstance(metadata, dict) else ""
    if not PAYMENT_ID.fullmatch(payment_id):
        raise WebhookError(400, "payment notification without a payment id")
    if not LEAD_ID.fullmatch(lead_id):
        return WebhookResult(note="payment without metadata.lead_id: not a prepayment of ours")
    return WebhookResult(
        crm_events=[
            CrmEvent(
                event_id=f"payment:{payment_id}:{event}",  # ЮKassa repeats until answered 200: one event
                event=f"PAYMENT_SUCCEEDED:{lead_id}",
                entity="payment",
                crm_id=payment_id,
                received_at=clock.wall_now(),
            )
        ]
    )
