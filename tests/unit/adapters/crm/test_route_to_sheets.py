"""Route writes leads into a Google sheet (``crm: {kind: sheets}``) through the real handler,
wiring and client: one row per lead, a 429 retried through the queue once the budget allows."""

from __future__ import annotations

import time

import pytest

from leadflow import clock, wiring
from leadflow.adapters import rate_limit
from tests.fakes.google_sheets_server import GoogleSheets, service_account_json
from tests.support.builders import use_business
from tests.unit.adapters.crm.test_route_to_bitrix24 import SATURDAY_NOON, _qualified_lead, _route

SHEET_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


@pytest.fixture
def google(aws, monkeypatch):
    with GoogleSheets() as google:
        google.create(SHEET_ID)
        monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_JSON", service_account_json())
        monkeypatch.setenv("GOOGLE_SHEETS_API_BASE", google.url)
        monkeypatch.setenv("GOOGLE_OAUTH_TOKEN_URL", google.token_url)
        stored = aws.store.config.get(0)
        crm = stored.crm.model_dump() | {"kind": "sheets", "sheet": {"spreadsheet_id": SHEET_ID}}
        use_business(monkeypatch, type(stored).model_validate(stored.model_dump() | {"crm": crm}))
        monkeypatch.setattr(rate_limit, "_BUCKETS", {})  # each test starts with the sheet's full burst
        wiring.reset()
        yield google


def _ids_in_sheet(google) -> list[str]:
    rows = google.rows(SHEET_ID)
    column = rows[0].index("ID лида")
    return [row[column] for row in rows[1:]]


def test_a_batch_lands_as_rows_and_the_lead_knows_it(aws, google):
    clock.freeze(SATURDAY_NOON)
    leads = [_qualified_lead(aws, n) for n in range(3)]

    assert _route(aws, leads) == {"batchItemFailures": []}

    assert sorted(_ids_in_sheet(google)) == sorted(lead.lead_id for lead in leads)
    for lead in leads:
        stored = aws.store.leads.get(lead.lead_id)
        assert stored.crm_id == lead.lead_id and stored.crm_entity == "row"
    assert google.count("write") == 2  # the header once, then one append for the batch


def test_a_429_goes_round_the_queue_and_waits_out_the_budget(aws, google):
    clock.freeze(SATURDAY_NOON)
    lead = _qualified_lead(aws, 7)
    google.fail_next(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Write requests'", after=2)

    first = _route(aws, [lead])
    assert first == {"batchItemFailures": [{"itemIdentifier": f"m-{lead.lead_id}"}]}
    assert _ids_in_sheet(google) == [] and aws.store.leads.get(lead.lead_id).owner
    sent = len(google.api_requests)

    # Redelivered at once: the drained budget refuses it before Google is asked again.
    assert _route(aws, [lead], receive_count=2)["batchItemFailures"]
    assert len(google.api_requests) == sent

    time.sleep(2.3)  # the budget refills (0.9 requests/s); SQS waits minutes before a redelivery
    assert _route(aws, [lead], receive_count=3) == {"batchItemFailures": []}

    assert _ids_in_sheet(google) == [lead.lead_id]
    assert aws.store.leads.get(lead.lead_id).crm_id == lead.lead_id
    cards = [m for m in aws.store.conversation.outbound(lead.lead_id) if m["kind"] == "lead_card"]
    assert len(cards) == 1
