"""What a lead keeps from its messages: the second-edition facts (services, window) fill and refine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from leadflow.domain.models import Contact, InboundMessage, Lead, Qualification
from leadflow.domain.understanding import merge

TZ = ZoneInfo("Asia/Krasnoyarsk")
START = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)


def _lead(**fields) -> Lead:
    base = {
        "lead_id": "L1",
        "channel": "telegram",
        "chat_id": "42",
        "contact_id": "C-L1",
        "received_at": START,
        "last_message_at": START,
    }
    return Lead.model_validate(base | fields)


def _message(n: int, minutes: int) -> InboundMessage:
    return InboundMessage(
        message_id=f"telegram:{n}",
        channel="telegram",
        chat_id="42",
        contact=Contact(channel_user_id="42"),
        text="…",
        received_at=START + timedelta(minutes=minutes),
    )


def test_a_newer_message_refines_services_and_window_and_an_empty_one_keeps_them() -> None:
    lead = _lead()
    first = Qualification(service="manicure", services=["manicure", "pedicure"], preferred_window="morning")
    lead = merge(lead, _message(1, 1), first, TZ)
    assert lead is not None
    assert (lead.service, lead.services, lead.preferred_window) == (
        "manicure",
        ["manicure", "pedicure"],
        "morning",
    )

    # «а можно всё-таки после 18?»: a new window, no service named — the services stay
    lead = merge(
        lead, _message(2, 2), Qualification(preferred_time="18:00", preferred_window="after 18:00"), TZ
    )
    assert lead is not None
    assert (lead.services, lead.preferred_window) == (["manicure", "pedicure"], "after 18:00")

    lead = merge(lead, _message(3, 3), Qualification(service="brows", services=["brows"]), TZ)
    assert lead is not None
    assert (lead.service, lead.services) == ("brows", ["brows"])


def test_a_late_older_message_only_fills_gaps() -> None:
    lead = _lead(last_message_at=START + timedelta(minutes=10))
    lead = merge(lead, _message(1, 5), Qualification(service="massage", preferred_window="evening"), TZ)
    assert lead is not None
    assert (lead.services, lead.preferred_window) == (["massage"], "evening")
    lead = merge(lead, _message(2, 4), Qualification(service="brows", preferred_window="morning"), TZ)
    assert lead is not None
    assert (lead.services, lead.preferred_window) == (["massage"], "evening")


def test_a_lead_stored_before_services_existed_lists_its_service() -> None:
    lead = _lead(service="massage")  # an item written by an earlier version: no `services`
    lead = merge(lead, _message(1, 1), Qualification(intent="question"), TZ)
    assert lead is not None
    assert lead.services == ["massage"]
    assert list(lead.public_view())[7:11] == [
        "preferred_date",
        "preferred_time",
        "services",
        "preferred_window",
    ]


def test_qualification_keeps_service_first_of_services() -> None:
    assert Qualification(service="brows").services == ["brows"]
    assert Qualification(service="brows", services=["lashes", "brows"]).services == ["brows", "lashes"]
    assert Qualification(service=None, services=["lashes"]).services == []
