"""Route pushes leads into Bitrix24 exactly once, through the real handler and client, with the
portal failing in the ways it does (503 QUERY_LIMIT_EXCEEDED, a lost answer)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadflow import clock, wiring
from leadflow.domain.models import Contact, Lead, LeadReady
from leadflow_local.functions import invoke
from leadflow_local.stack import sqs_event
from leadflow_local.template import load_template
from tests.fakes.bitrix24_server import Bitrix24Portal

SATURDAY_NOON = datetime(2026, 3, 14, 5, 0, tzinfo=UTC)  # 12:00 in Krasnoyarsk


@pytest.fixture
def portal(aws, monkeypatch):
    with Bitrix24Portal(mode=1, rate_limit=False) as portal:
        monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
        wiring.reset()
        yield portal
    assert not portal.violations


def route_batch_size() -> int:
    [source] = load_template().functions()["route"].sqs_sources
    return int(source["batch_size"])


def _qualified_lead(aws, n: int) -> Lead:
    lead = Lead(
        lead_id=f"L{n:012d}",
        channel="telegram",
        chat_id=str(1000 + n),
        contact_id=f"C{n}",
        contact=Contact(name="Анна", phone=f"+7913{n:07d}"),
        intent="booking",
        temperature="warm",
        service="manicure",
        received_at=SATURDAY_NOON,
        last_message_at=SATURDAY_NOON,
    )
    aws.store.leads.create(lead)
    return lead


def _route(aws, leads: list[Lead], receive_count: int = 1) -> dict:
    messages = [
        {
            "MessageId": f"m-{lead.lead_id}",
            "ReceiptHandle": "rh",
            "Body": LeadReady(lead_id=lead.lead_id).model_dump_json(),
            "Attributes": {"ApproximateReceiveCount": str(receive_count)},
        }
        for lead in leads
    ]
    return invoke("route", sqs_event(messages, "RouteQueue"))


def test_a_batch_of_leads_lands_in_bitrix24_once_each(aws, portal):
    clock.freeze(SATURDAY_NOON)
    leads = [_qualified_lead(aws, n) for n in range(3)]

    assert _route(aws, leads) == {"batchItemFailures": []}

    for lead in leads:
        stored = aws.store.leads.get(lead.lead_id)
        assert stored.crm_id and stored.crm_entity == "lead"
        assert portal.records_with_origin(lead.lead_id) == [("lead", int(stored.crm_id))]
    assert len(portal.http_methods) <= 3  # mode + lookup batch, write batch


def test_query_limit_exceeded_is_retried_through_the_queue_without_doubling(aws, portal):
    clock.freeze(SATURDAY_NOON)
    lead = _qualified_lead(aws, 7)
    portal.fail_next(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")

    first = _route(aws, [lead])
    assert first == {"batchItemFailures": [{"itemIdentifier": f"m-{lead.lead_id}"}]}
    assert aws.store.leads.get(lead.lead_id).crm_id is None
    assert aws.store.leads.get(lead.lead_id).owner  # the owner is kept; only the CRM step is retried

    second = _route(aws, [lead], receive_count=2)
    assert second == {"batchItemFailures": []}
    assert len(portal.records_with_origin(lead.lead_id)) == 1
    card_sends = [m for m in aws.store.conversation.outbound(lead.lead_id) if m["kind"] == "lead_card"]
    assert len(card_sends) == 1


def test_a_lost_answer_is_checked_not_blindly_resent(aws, portal):
    clock.freeze(SATURDAY_NOON)
    lead = _qualified_lead(aws, 9)
    portal.apply_then_lose_next(method="batch", skip=1)  # the write batch is applied, its answer lost

    assert _route(aws, [lead])["batchItemFailures"]
    wiring.reset()  # the retry lands on another Lambda instance
    assert _route(aws, [lead], receive_count=2) == {"batchItemFailures": []}

    assert len(portal.records_with_origin(lead.lead_id)) == 1
    assert aws.store.leads.get(lead.lead_id).crm_id == str(portal.records_with_origin(lead.lead_id)[0][1])


def test_a_full_route_batch_lands_in_two_requests(aws, portal):
    clock.freeze(SATURDAY_NOON)
    batch_size = route_batch_size()
    leads = [_qualified_lead(aws, n) for n in range(100, 100 + batch_size)]

    assert _route(aws, leads) == {"batchItemFailures": []}

    assert len(portal.http_methods) == 2  # the lookup (with the mode) and the writes
    for lead in leads:
        assert len(portal.records_with_origin(lead.lead_id)) == 1
        assert aws.store.leads.get(lead.lead_id).crm_id


def test_a_phone_the_client_gives_after_the_push_reaches_the_record_once(aws, portal):
    """score (real) merges the phone into a routed lead and asks route to bring the record and
    the card up to date; the portal is busy once (503) — the queue retries, nothing doubles."""
    from tests.support.builders import client_writes

    clock.freeze(SATURDAY_NOON)
    lead = client_writes(aws.store, "Срочно! Нужен маникюр сегодня", chat="7001")
    ready = aws.receive("RouteQueue")
    assert invoke("route", sqs_event(ready, "RouteQueue")) == {"batchItemFailures": []}
    lead = aws.store.leads.get(lead.lead_id)
    record = portal.portal.leads[int(lead.crm_id)]
    assert not record.get("PHONE")

    client_writes(aws.store, "Ирина, 89138402765, в 17:00", chat="7001")
    updated = aws.receive("RouteQueue")
    assert [LeadReady.model_validate_json(m["Body"]).reason for m in updated] == ["updated"]
    portal.fail_next(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
    assert invoke("route", sqs_event(updated, "RouteQueue"))["batchItemFailures"]  # back to the queue
    for _ in range(2):  # the retry, then a duplicate delivery
        assert invoke("route", sqs_event(updated, "RouteQueue")) == {"batchItemFailures": []}

    assert [p["VALUE"] for p in record["PHONE"]] == ["+79138402765"]
    assert "17:00" in record["COMMENTS"]
    assert aws.store.leads.get(lead.lead_id).card_shows is not None
