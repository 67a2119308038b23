"""A hand-built day of the example salon (Tuesday 17 March 2026, Krasnoyarsk): six leads whose
figures are worked out by hand in test_kpi.py and test_digest.py."""

from __future__ import annotations

from datetime import timedelta

from leadflow.domain.models import Lead, Utm
from tests.support.builders import local


def lead(n: int, channel: str, temperature: str | None, hour: int, minute: int, *, owner: str | None = None,
         status: str = "assigned", first_reply_s: int | None = None, accept_s: int | None = None,
         booked: bool = False, tags: tuple[str, ...] = (), intent: str = "booking",
         utm_source: str | None = None) -> Lead:  # fmt: skip
    received = local(2026, 3, 17, hour, minute) if hour >= 0 else local(2026, 3, 16, 24 + hour, minute)
    return Lead(
        lead_id=f"L{n}", channel=channel, chat_id=f"c{n}", contact_id=f"C{n}", temperature=temperature,
        intent=intent, owner=owner, status=status, received_at=received, last_message_at=received,
        first_reply_at=received + timedelta(seconds=first_reply_s) if first_reply_s is not None else None,
        accepted_at=received + timedelta(seconds=accept_s) if accept_s is not None else None,
        appointment_at=local(2026, 3, 18, 15) if booked else None, tags=list(tags), utm=Utm(source=utm_source),
    )  # fmt: skip


def tuesday() -> list[Lead]:
    return [
        lead(1, "telegram", "hot", 10, 5, owner="anna", status="visited", first_reply_s=10, accept_s=120,
             booked=True, utm_source="instagram"),
        lead(2, "telegram", "warm", 10, 40, owner="anna", status="no_show", first_reply_s=20, accept_s=600,
             booked=True),
        lead(3, "whatsapp", "hot", 12, 10, owner="katya", first_reply_s=30, tags=("sla_breached",)),
        lead(4, "form", "cold", 12, 30, owner="olga", status="confirmed", first_reply_s=40, accept_s=1200,
             booked=True, utm_source="yandex"),
        lead(5, "vk", "warm", 18, 0, status="qualifying"),
        lead(6, "instagram", "cold", 18, 20, status="not_target", intent="not_target", first_reply_s=5),
    ]  # fmt: skip
