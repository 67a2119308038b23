"""What route reads and writes per lead: the client travels with the LeadReady score sends, so
routing a new lead reads no contact; closing a lead ends its timers in one request."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from leadflow import clock, wiring
from leadflow.domain.models import LeadReady
from leadflow_local.functions import invoke
from leadflow_local.stack import sqs_event
from tests.support.builders import SATURDAY_11, client_writes, message, score

COMPLETE = "Хочу на маникюр завтра в 15:00, тел 89138402765"


@pytest.fixture
def requests(aws):
    """DynamoDB requests by (operation, table) made through the functions' client."""
    counted: Counter[tuple[str, str]] = Counter()

    def count(params, model, **_):
        table = params.get("TableName") or ",".join(params.get("RequestItems", {}))
        counted[(model.name, table)] += 1

    events = wiring.dynamodb().meta.client.meta.events
    events.register("before-parameter-build.dynamodb", count, unique_id="test-route-reads")
    yield counted
    events.unregister("before-parameter-build.dynamodb", unique_id="test-route-reads")


def _route(bodies: list[str]) -> None:
    records = [
        {"MessageId": f"r{n}", "ReceiptHandle": "rh", "Body": body, "Attributes": {"ApproximateReceiveCount": "1"}}
        for n, body in enumerate(bodies)
    ]  # fmt: skip
    answer = invoke("route", sqs_event(records, "RouteQueue"))
    assert answer["batchItemFailures"] == []


def test_the_lead_ready_score_sends_carries_the_client_as_written(aws):
    clock.freeze(SATURDAY_11)
    lead = client_writes(aws.store, COMPLETE)
    (body,) = [json.loads(m["Body"]) for m in aws.receive("RouteQueue")]
    carried = LeadReady.model_validate(body).contact
    assert carried is not None
    assert carried == aws.store.contacts.get(lead.contact_id)  # the open lead and its count included
    assert carried.open_lead_id == lead.lead_id and carried.leads == 1


def test_routing_a_new_lead_reads_no_contact(aws, requests):
    clock.freeze(SATURDAY_11)
    client_writes(aws.store, COMPLETE)
    bodies = [m["Body"] for m in aws.receive("RouteQueue")]
    requests.clear()
    _route(bodies)
    assert requests[("GetItem", "ContactsTable")] == 0
    assert aws.store.leads.table.scan()["Items"][0]["owner"]


def test_without_the_client_or_with_another_one_route_reads_the_contact(aws, requests):
    """An older sender (escalate's «waited») carries no client; a copy of another contact is ignored."""
    clock.freeze(SATURDAY_11)
    first = client_writes(aws.store, COMPLETE)
    aws.receive("RouteQueue")
    second = client_writes(aws.store, COMPLETE, chat="70002")
    (body,) = [json.loads(m["Body"]) for m in aws.receive("RouteQueue")]
    wrong = LeadReady(lead_id=first.lead_id, contact=LeadReady.model_validate(body).contact)
    requests.clear()
    _route([LeadReady(lead_id=second.lead_id).model_dump_json(), wrong.model_dump_json()])
    assert requests[("GetItem", "ContactsTable")] == 2
    for lead_id in (first.lead_id, second.lead_id):
        assert aws.store.leads.get(lead_id).owner


def test_a_returning_clients_lead_is_routed_as_a_repeat_client(aws):
    """The carried copy is the contact after this lead opened: its second lead counts as repeat."""
    clock.freeze(SATURDAY_11)
    score(aws, message(1, "Стрижка завтра в 15:00, Ира, 89138402765"))
    first = aws.store.leads.table.scan()["Items"][0]["lead_id"]
    _route([m["Body"] for m in aws.receive("RouteQueue")])
    aws.store.leads.mutate(first, lambda lead: lead.model_copy(update={"status": "lost"}))
    aws.store.contacts.close_lead(aws.store.leads.get(first).contact_id, first)
    score(aws, message(2, "И ещё маникюр послезавтра в 12:00", at=SATURDAY_11.replace(hour=12)))
    (body,) = [json.loads(m["Body"]) for m in aws.receive("RouteQueue")]
    carried = LeadReady.model_validate(body).contact
    assert carried is not None and carried.leads == 2 and carried.is_repeat_client


def test_closing_a_lead_ends_its_timers_in_one_request(aws, requests):
    clock.freeze(SATURDAY_11)
    lead = client_writes(aws.store, "Здравствуйте, хочу на маникюр")  # waits for its details
    assert aws.store.timers.get(f"route_wait#{lead.lead_id}") is not None
    requests.clear()
    from leadflow.domain import lifecycle
    from leadflow.steps.leads import LeadChanges

    LeadChanges(aws.store, wiring.business()).apply(lead.lead_id, lifecycle.close_not_target)
    assert requests[("BatchWriteItem", "TimersTable")] == 1
    assert requests[("DeleteItem", "TimersTable")] == 0
    for kind in ("sla", "route_wait", "nudge", "emoji_wait"):
        assert aws.store.timers.get(f"{kind}#{lead.lead_id}") is None
