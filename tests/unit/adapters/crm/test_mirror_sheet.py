"""``crm.mirror_sheet``: leads routed into Bitrix24 also land in the owner's Google sheet, once,
and a status changed in Bitrix24 reaches the sheet through CrmSync."""

from __future__ import annotations

import pytest

from leadflow import clock, wiring
from leadflow.adapters import rate_limit
from leadflow.domain.models import CrmEvent
from tests.fakes.bitrix24_server import Bitrix24Portal
from tests.fakes.google_sheets_server import GoogleSheets, service_account_json
from tests.support.builders import use_business
from tests.unit.adapters.crm.test_route_to_bitrix24 import SATURDAY_NOON, _qualified_lead, _route

SHEET_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


@pytest.fixture
def both(aws, monkeypatch):
    with Bitrix24Portal(mode=1, rate_limit=False) as portal, GoogleSheets() as google:
        google.create(SHEET_ID, sheet="Заявки")
        monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
        monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_JSON", service_account_json())
        monkeypatch.setenv("GOOGLE_SHEETS_API_BASE", google.url)
        monkeypatch.setenv("GOOGLE_OAUTH_TOKEN_URL", google.token_url)
        stored = aws.store.config.get(0)
        crm = stored.crm.model_dump() | {"mirror_sheet": {"spreadsheet_id": SHEET_ID, "sheet": "Заявки"}}
        use_business(monkeypatch, type(stored).model_validate(stored.model_dump() | {"crm": crm}))
        monkeypatch.setattr(rate_limit, "_BUCKETS", {})  # each test starts with the sheet's full burst
        wiring.reset()
        yield portal, google
    assert not portal.violations


def _sheet(google) -> dict[str, dict[str, str]]:
    rows = google.rows(SHEET_ID, "Заявки")
    return {row[-1]: dict(zip(rows[0], row, strict=False)) for row in rows[1:]}


def test_leads_go_to_bitrix24_and_the_sheet_once_and_follow_bitrix24(aws, both):
    portal, google = both
    clock.freeze(SATURDAY_NOON)
    leads = [_qualified_lead(aws, n) for n in range(2)]

    assert _route(aws, leads) == {"batchItemFailures": []}
    assert _route(aws, leads, receive_count=2) == {"batchItemFailures": []}  # redelivered: nothing new

    for lead in leads:
        stored = aws.store.leads.get(lead.lead_id)
        assert stored.mirrored and stored.crm_entity == "lead"
        assert portal.records_with_origin(lead.lead_id) == [("lead", int(stored.crm_id))]
    assert sorted(_sheet(google)) == sorted(lead.lead_id for lead in leads)

    first = aws.store.leads.get(leads[0].lead_id)
    portal.portal.leads[int(first.crm_id)]["STATUS_ID"] = "IN_PROCESS"  # taken in Bitrix24
    wiring.route_step().crm_sync.apply(
        CrmEvent(event_id="b1", event="ONCRMLEADUPDATE", crm_id=first.crm_id, received_at=clock.now())
    )
    assert aws.store.leads.get(first.lead_id).status == "accepted"
    assert _sheet(google)[first.lead_id]["Статус"] == "в работе"


def test_a_sheet_that_refuses_for_good_does_not_hold_the_lead_back(aws, both):
    _, google = both
    google.spreadsheets[SHEET_ID].shared_with.clear()  # the owner un-shared it
    clock.freeze(SATURDAY_NOON)
    lead = _qualified_lead(aws, 3)

    assert _route(aws, [lead]) == {"batchItemFailures": []}

    stored = aws.store.leads.get(lead.lead_id)
    assert stored.crm_id and not stored.crm_error and not stored.mirrored
    assert len([m for m in aws.store.conversation.outbound(lead.lead_id) if m["kind"] == "lead_card"]) == 1


def test_a_status_change_reaches_bitrix24_even_when_the_sheet_was_unshared_since(aws, both):
    portal, google = both
    clock.freeze(SATURDAY_NOON)
    lead = _qualified_lead(aws, 4)
    assert _route(aws, [lead]) == {"batchItemFailures": []}
    google.spreadsheets[SHEET_ID].shared_with.clear()
    stored = aws.store.leads.get(lead.lead_id)

    wiring.crm().update_status(stored.model_copy(update={"status": "booked"}))

    assert portal.portal.leads[int(stored.crm_id)]["STATUS_ID"] == "PROCESSED"
