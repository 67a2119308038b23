"""A visit time a manager sets in Bitrix24 (the record's date field named by crm.booking_field, read
with crm.lead.get on the CRM's outbound event) schedules the 24 h and 2 h reminders like a bot
booking; moving it there moves them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadflow import clock, wiring
from leadflow.business import Crm
from leadflow.domain.models import CrmEvent
from tests.fakes.bitrix24_server import Bitrix24Portal
from tests.support.builders import use_business
from tests.unit.adapters.crm.test_route_to_bitrix24 import SATURDAY_NOON, _qualified_lead, _route

FIELD = "UF_CRM_VISIT_AT"


@pytest.fixture
def portal(aws, monkeypatch):
    with Bitrix24Portal(mode=1, rate_limit=False) as portal:
        monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
        wiring.reset()
        stored = wiring.business()
        use_business(monkeypatch, stored.model_copy(update={"crm": Crm(booking_field=FIELD)}))
        yield portal
    assert not portal.violations


def _reminders(aws, lead_id: str) -> list[str]:
    items = aws.store.timers.table.scan()["Items"]
    return sorted(i["due_at"] for i in items if i.get("lead_id") == lead_id and i["kind"] == "appointment")


def _crm_event(crm_id: str, n: int) -> None:
    wiring.route_step().crm_sync.apply(
        CrmEvent(event_id=f"b{n}", event="ONCRMLEADUPDATE", crm_id=crm_id, received_at=clock.now())
    )


def test_a_booking_time_set_in_bitrix24_schedules_and_moves_the_reminders(aws, portal) -> None:
    clock.freeze(SATURDAY_NOON)
    lead = _qualified_lead(aws, 1)
    _route(aws, [lead])
    crm_id = aws.store.leads.get(lead.lead_id).crm_id
    assert crm_id

    # an event with the field still empty changes nothing
    _crm_event(crm_id, 1)
    assert _reminders(aws, lead.lead_id) == []

    portal.portal.leads[int(crm_id)][FIELD] = "2026-03-17T15:00:00+07:00"
    _crm_event(crm_id, 2)
    booked = aws.store.leads.get(lead.lead_id)
    assert booked.status == "booked" and booked.appointment_at == datetime(2026, 3, 17, 8, 0, tzinfo=UTC)
    assert _reminders(aws, lead.lead_id) == ["2026-03-16T08:00:00.000000Z", "2026-03-17T06:00:00.000000Z"]

    portal.portal.leads[int(crm_id)][FIELD] = "2026-03-18T12:00:00+07:00"  # moved in Bitrix24
    clock.advance(timedelta(minutes=5))
    _crm_event(crm_id, 3)
    assert aws.store.leads.get(lead.lead_id).appointment_at == datetime(2026, 3, 18, 5, 0, tzinfo=UTC)
    assert _reminders(aws, lead.lead_id) == ["2026-03-17T05:00:00.000000Z", "2026-03-18T03:00:00.000000Z"]
    _crm_event(crm_id, 3)  # the same event again changes nothing
    assert _reminders(aws, lead.lead_id) == ["2026-03-17T05:00:00.000000Z", "2026-03-18T03:00:00.000000Z"]
