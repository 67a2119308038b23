"""Small builders shared by the routing tests: a config from YAML text, local times, leads."""

from __future__ import annotations

import textwrap
from datetime import datetime
from zoneinfo import ZoneInfo

from leadflow.business import BusinessConfig, parse_business_config
from leadflow.domain.models import Lead

KRS = ZoneInfo("Asia/Krasnoyarsk")
MSK = ZoneInfo("Europe/Moscow")


def business(yaml_text: str) -> BusinessConfig:
    return parse_business_config(textwrap.dedent(yaml_text), source="test.yaml")


def local(tz: ZoneInfo, text: str) -> datetime:
    """An aware datetime from '2026-03-16 10:00' on the wall clock of ``tz``."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def lead(lead_id: str = "L1", **fields) -> Lead:
    base = {
        "lead_id": lead_id,
        "channel": "telegram",
        "chat_id": "42",
        "contact_id": f"C-{lead_id}",
        "intent": "booking",
        "temperature": "warm",
        "received_at": datetime(2026, 3, 16, 3, 0, tzinfo=ZoneInfo("UTC")),
        "last_message_at": datetime(2026, 3, 16, 3, 0, tzinfo=ZoneInfo("UTC")),
    }
    return Lead.model_validate(base | fields)
