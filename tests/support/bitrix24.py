"""Builders shared by the Bitrix24 CRM tests (tests/unit/adapters/crm): a client on a fake portal, CRM leads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests

from leadflow.adapters.crm.bitrix24 import Bitrix24Client, CallbackTask, CrmLead
from leadflow.adapters.rate_limit import TokenBucket
from tests.fakes.bitrix24_server import Bitrix24Portal

CLASSIC, SIMPLE = 1, 2


def make_client(portal: Bitrix24Portal, **kwargs) -> Bitrix24Client:
    limiter = kwargs.pop("rate_limiter", None) or TokenBucket(rate_per_s=50, burst=500)
    kwargs.setdefault("timeout_s", 2)
    return Bitrix24Client(portal.webhook_url, requests.Session(), limiter, **kwargs)


def make_lead(n: int, *, phone: str | None = "auto", callback: bool = False, **overrides) -> CrmLead:
    fields = {
        "origin_id": f"lead-{n:05d}",
        "title": f"Стрижка, заявка {n}",
        "name": "Анна",
        "phone": f"+7916{n:07d}" if phone == "auto" else phone,
        "source_id": "WEB",
        "source_description": "instagram",
        "utm": {"source": "instagram", "medium": "cpc", "campaign": "spring", "content": None, "term": None},
        "assigned_by_id": 5,
        "comments": "Хочу на стрижку в субботу",
        "tags": ["hot", "haircut"],
        "callback": CallbackTask(
            datetime(2026, 3, 7, 10, 0, tzinfo=UTC) + timedelta(minutes=n), "Перезвонить", 5
        )
        if callback
        else None,
    }
    fields.update(overrides)
    return CrmLead(**fields)
