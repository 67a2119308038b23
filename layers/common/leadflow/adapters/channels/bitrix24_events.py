"""Bitrix24 outbound webhooks ("Исходящий вебхук"): CRM changes reported back to us.

Bitrix24 posts ``application/x-www-form-urlencoded`` with PHP-style keys
(``event=ONCRMLEADUPDATE&data[FIELDS][ID]=123&ts=1700000000&auth[application_token]=…``).
The event carries only the record's id; the consumer fetches the record itself. The sender is
verified by ``auth[application_token]`` == BITRIX24_APP_TOKEN (shown in the outbound webhook's
settings in Bitrix24), compared in constant time; an unset token refuses everything.

Freshness: ``ts`` (unix seconds, when Bitrix24's queue server sent the event) must be at most
``MAX_EVENT_AGE`` old and at most ``MAX_CLOCK_SKEW`` ahead of our wall clock, else 403. Every
event makes the consumer read the record, and the portal allows 2 requests/s, so a replayed or
forged event must not be taken: within the window the same event (event, record id, ts — the
``event_id``) is dropped by ingest's dedupe, past it by this check. The window is generous
because Bitrix24 never resends an event: its queue "may deliver with a slight delay", and an
event refused for lateness is lost.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from leadflow import clock
from leadflow.adapters.channels.base import WebhookError, WebhookRequest, WebhookResult, require_secret
from leadflow.domain.models import CrmEvent

ENTITY_BY_EVENT = {
    "ONCRMLEADADD": "lead",
    "ONCRMLEADUPDATE": "lead",
    "ONCRMLEADDELETE": "lead",
    "ONCRMDEALADD": "deal",
    "ONCRMDEALUPDATE": "deal",
    "ONCRMDEALDELETE": "deal",
    "ONCRMCONTACTUPDATE": "contact",
    "ONCRMACTIVITYADD": "activity",
    "ONCRMACTIVITYUPDATE": "activity",
}
MAX_KEY_DEPTH = 8
MAX_EVENT_AGE = timedelta(minutes=15)
MAX_CLOCK_SKEW = timedelta(minutes=2)
_KEY_PART = re.compile(r"\[([^\[\]]*)\]")


def parse_php_form(text: str) -> dict[str, Any]:
    """``a[b][c]=v`` pairs → nested dicts, as PHP builds $_POST (``[]`` appends to a list)."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        head, _, rest = key.partition("[")
        parts = [head] + (_KEY_PART.findall("[" + rest) if rest else [])
        if not head or len(parts) > MAX_KEY_DEPTH:
            continue
        node: Any = result
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                child: Any = {}
                node.append(child)
                node = child
                continue
            if last:
                if part == "":
                    continue
                node.setdefault(part, value)
                break
            nxt = parts[index + 1]
            existing = node.get(part)
            if not isinstance(existing, dict | list):
                existing = [] if nxt == "" else {}
                node[part] = existing
            node = existing
    return result


def _parse_body(content_type: str | None, body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookError(400, "bitrix24 body is not UTF-8") from None
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json" or (
        kind != "application/x-www-form-urlencoded" and text.lstrip()[:1] == "{"
    ):
        try:
            raw = json.loads(text)
        except ValueError:
            raise WebhookError(400, "bitrix24 body is not valid JSON") from None
        if not isinstance(raw, dict):
            raise WebhookError(400, "bitrix24 body must be an object")
        return raw
    return parse_php_form(text)


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def handle_webhook(request: WebhookRequest) -> WebhookResult:
    from leadflow.settings import secret

    expected = secret("BITRIX24_APP_TOKEN")
    if not expected:
        raise WebhookError(403, "BITRIX24_APP_TOKEN is not configured: channel refuses all requests")
    if request.method.upper() != "POST":
        raise WebhookError(405, f"bitrix24 webhook accepts POST, got {request.method[:10]!r}")
    payload = _parse_body(request.header("content-type"), request.body)
    auth = payload.get("auth")
    token = _text(auth.get("application_token")) if isinstance(auth, dict) else None
    require_secret(expected, token, "bitrix24 auth[application_token]")

    event = (_text(payload.get("event")) or "").upper()
    entity = ENTITY_BY_EVENT.get(event)
    if entity is None:
        return WebhookResult(note=f"bitrix24 event {event[:40]!r} not used")
    data = payload.get("data")
    record = data.get("FIELDS") if isinstance(data, dict) else None
    crm_id = _text(record.get("ID")) if isinstance(record, dict) else None
    if not crm_id or len(crm_id) > 64:
        raise WebhookError(400, f"bitrix24 {event} without data[FIELDS][ID]")
    ts = _text(payload.get("ts"))
    if not ts or not ts.isdigit() or len(ts) > 10:
        raise WebhookError(400, f"bitrix24 {event} without a unix ts")
    received_at = datetime.fromtimestamp(int(ts), tz=UTC)
    require_fresh(received_at)
    crm_event = CrmEvent(
        event_id=f"bitrix24:{event}:{crm_id}:{ts}",
        event=event,
        entity=entity,  # type: ignore[arg-type]  # the values of ENTITY_BY_EVENT are the Literal's
        crm_id=crm_id,
        received_at=received_at,
    )
    return WebhookResult(crm_events=[crm_event])


def require_fresh(sent_at: datetime) -> None:
    """403 for an event sent before the window or from the future (see the module doc)."""
    age = clock.wall_now() - sent_at
    if age > MAX_EVENT_AGE:
        raise WebhookError(403, f"bitrix24 event ts is {_span(age)} old (at most {_span(MAX_EVENT_AGE)})")
    if -age > MAX_CLOCK_SKEW:
        raise WebhookError(403, f"bitrix24 event ts is {_span(-age)} ahead of our clock")


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds} s"
    return f"{seconds // 3600} h" if seconds < 172_800 else f"{seconds // 86_400} d"
