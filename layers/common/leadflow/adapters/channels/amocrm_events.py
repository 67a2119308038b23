"""amoCRM webhooks (Settings → Integrations → Web hooks): lead changes reported back to us.

amoCRM posts ``application/x-www-form-urlencoded`` with PHP-style keys, several events and
indexes per request (``leads[status][0][id]=…&leads[status][0][status_id]=142&account[subdomain]=…``).
We take ``leads[status]`` (a person moved the lead to another stage) and ``leads[delete]``; the
consumer reads the lead's stage itself (CrmSync → ``AmoCrm.status_of``), as for Bitrix24.

amoCRM signs nothing, so the webhook's address carries the secret: the owner registers
``…/webhooks/amocrm?secret=<AMOCRM_WEBHOOK_SECRET>`` (compared in constant time; unset refuses
everything), and the account must be ours: ``account[subdomain]`` is the subdomain of
AMOCRM_BASE_URL when amoCRM sends it. A replay of the same change is dropped by ingest's dedupe
(the event id holds the lead, the stage and amoCRM's change time).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from leadflow import clock
from leadflow.adapters.channels.base import WebhookError, WebhookRequest, WebhookResult, require_secret
from leadflow.adapters.channels.bitrix24_events import parse_php_form
from leadflow.domain.models import CrmEvent

TAKEN = {"status": "STATUS", "delete": "DELETE"}
MAX_EVENTS = 100


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _items(value: Any) -> list[Any]:
    """PHP lists arrive as {"0": …, "1": …} from our parser."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value[k] for k in sorted(value, key=lambda k: int(k) if k.isdigit() else 0)]
    return []


def our_subdomain() -> str | None:
    from leadflow.settings import settings

    host = urlsplit(settings().amocrm_base_url or "").hostname or ""
    return host.split(".")[0] if host.endswith((".amocrm.ru", ".amocrm.com", ".kommo.com")) else None


def handle_webhook(request: WebhookRequest) -> WebhookResult:
    from leadflow.settings import secret

    require_secret(secret("AMOCRM_WEBHOOK_SECRET"), request.query.get("secret"), "amocrm ?secret=")
    if request.method.upper() != "POST":
        raise WebhookError(405, f"amocrm webhook accepts POST, got {request.method[:10]!r}")
    try:
        payload = parse_php_form(request.body.decode("utf-8"))
    except UnicodeDecodeError:
        raise WebhookError(400, "amocrm body is not UTF-8") from None
    account = payload.get("account")
    subdomain = _text(account.get("subdomain")) if isinstance(account, dict) else None
    ours = our_subdomain()
    if ours and subdomain and subdomain.lower() != ours.lower():
        raise WebhookError(403, "amocrm webhook from another account")
    leads = payload.get("leads")
    if not isinstance(leads, dict):
        return WebhookResult(note="amocrm webhook without lead events")
    events: list[CrmEvent] = []
    received = clock.wall_now()
    for action, name in TAKEN.items():
        for item in _items(leads.get(action))[:MAX_EVENTS]:
            if not isinstance(item, dict):
                continue
            crm_id = _text(item.get("id"))
            if not crm_id or not crm_id.isdigit() or len(crm_id) > 20:
                raise WebhookError(400, f"amocrm leads[{action}] without a lead id")
            stage = _text(item.get("status_id")) or "-"
            changed = _text(item.get("updated_at")) or _text(item.get("last_modified")) or "-"
            events.append(
                CrmEvent(
                    event_id=f"amocrm:{name}:{crm_id}:{stage[:20]}:{changed[:20]}",
                    event=name,
                    entity="lead",
                    crm_id=crm_id,
                    received_at=_moment(changed) or received,
                )
            )
    if not events:
        return WebhookResult(note="amocrm webhook: no status change or deletion")
    return WebhookResult(crm_events=events)


def _moment(text: str) -> datetime | None:
    return datetime.fromtimestamp(int(text), tz=UTC) if text.isdigit() and len(text) <= 10 else None
