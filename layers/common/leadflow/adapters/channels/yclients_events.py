"""YCLIENTS record webhooks (``/webhooks/yclients``): a record created, changed or deleted there.

The payload (``{"company_id", "resource": "record", "resource_id", "status": "create"|"update"|
"delete", "data": {...record...}}``) is not documented with a signature, so the sender is checked
by a secret in the webhook URL the business registers in YCLIENTS —
``…/webhooks/yclients?secret=<YCLIENTS_WEBHOOK_SECRET>`` — compared in constant time (unset:
everything refused). Nothing in the body is trusted: the consumer re-reads the record by id.
"""

from __future__ import annotations

import hashlib
import json

from leadflow import clock
from leadflow.adapters.channels.base import WebhookError, WebhookRequest, WebhookResult, require_secret
from leadflow.domain.models import CrmEvent

STATUSES = {"create", "update", "delete"}


def handle_webhook(request: WebhookRequest) -> WebhookResult:
    from leadflow.settings import secret

    require_secret(
        secret("YCLIENTS_WEBHOOK_SECRET"),
        request.query.get("secret") or request.header("x-leadflow-secret"),
        "yclients webhook secret",
    )
    if request.method.upper() != "POST":
        raise WebhookError(405, f"yclients webhook accepts POST, got {request.method[:10]!r}")
    try:
        payload = json.loads(request.body or b"null")
    except ValueError:
        raise WebhookError(400, "yclients body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise WebhookError(400, "yclients body must be an object")
    if payload.get("resource") != "record":
        return WebhookResult(note=f"yclients resource {str(payload.get('resource'))[:20]!r} not used")
    status = str(payload.get("status") or "")
    record_id = str(payload.get("resource_id") or "")
    if status not in STATUSES or not record_id.isdigit() or len(record_id) > 20:
        raise WebhookError(400, "yclients record event without status or resource_id")
    given = payload.get("data")
    data: dict = given if isinstance(given, dict) else {}
    # One event per state of the record: a redelivery of the same change is dropped by ingest.
    version = str(data.get("last_change_date") or data.get("datetime") or "")
    # attendance too: «не пришёл» marked on a record changes neither its time nor its deleted flag
    state = f"{status}:{version}:{data.get('deleted')}:{data.get('attendance')}"
    digest = hashlib.sha256(state.encode()).hexdigest()[:12]
    api_id = str(data.get("api_id") or "")[:64] or None
    event = CrmEvent(
        event_id=f"yclients:{record_id}:{digest}",
        event=f"YCLIENTS_RECORD_{status.upper()}" + (f":{api_id}" if api_id else ""),
        entity="record",
        crm_id=record_id,
        received_at=clock.wall_now(),
    )
    return WebhookResult(crm_events=[event])
