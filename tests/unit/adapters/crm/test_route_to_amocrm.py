"""Route pushes leads into amoCRM (``crm: {kind: amocrm}``) through the real handler, wiring and
client; a person moving the lead in amoCRM comes back through /webhooks/amocrm and CrmSync."""

from __future__ import annotations

import pytest

from leadflow import clock, wiring
from leadflow.adapters.crm.amocrm import AmoCrmClient
from leadflow_local.functions import invoke
from leadflow_local.stack import api_gateway_event, sqs_event
from tests.fakes.amocrm_server import PIPELINE, SECOND_STAGE, AmoCrmAccount
from tests.support.builders import use_business
from tests.unit.adapters.crm.test_route_to_bitrix24 import SATURDAY_NOON, _qualified_lead, _route

SECRET = "amo-hook-secret"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def amo(aws, monkeypatch):
    with AmoCrmAccount(users=(111, 222, 333)) as amo:
        monkeypatch.setenv("AMOCRM_BASE_URL", amo.base_url)
        monkeypatch.setenv("AMOCRM_TOKEN", amo.token)
        monkeypatch.setenv("AMOCRM_WEBHOOK_SECRET", SECRET)
        stored = aws.store.config.get(0)
        staff = [
            m.model_dump() | {"amocrm_user_id": (111, 222, 333)[n % 3]} for n, m in enumerate(stored.staff)
        ]
        crm = stored.crm.model_dump() | {
            "kind": "amocrm",
            "amocrm": {"pipeline_id": PIPELINE, "statuses": {"accepted": SECOND_STAGE}},
        }
        use_business(
            monkeypatch, type(stored).model_validate(stored.model_dump() | {"crm": crm, "staff": staff})
        )
        wiring.reset()
        yield amo
    assert not amo.violations


def test_a_batch_lands_in_amocrm_with_its_owner_and_at_most_three_requests_a_lead(aws, amo):
    clock.freeze(SATURDAY_NOON)
    leads = [_qualified_lead(aws, n) for n in range(4)]

    assert _route(aws, leads) == {"batchItemFailures": []}

    business = wiring.business()
    for lead in leads:
        stored = aws.store.leads.get(lead.lead_id)
        record = amo.leads[int(stored.crm_id)]
        assert stored.crm_entity == "lead" and record["name"].endswith(lead.lead_id)
        assert record["responsible_user_id"] == business.staff_member(stored.owner).amocrm_user_id
    assert len(amo.calls) <= 3 * len(leads)
    assert len(amo.calls) == len(leads) + 1  # a search per phone, one create for the batch


def test_a_lost_create_answer_is_looked_up_on_the_redelivery(aws, amo, monkeypatch):
    clock.freeze(SATURDAY_NOON)
    lead = _qualified_lead(aws, 9)
    amo.lose_next_answer(after=1)  # the search passes; the create is done, its answer comes in 3 s
    original = AmoCrmClient.__init__

    def impatient(self, *args, **kwargs):  # route waits 10 s; 1 s makes the answer lost for real
        original(self, *args, **kwargs)
        self.timeout_s = 1

    monkeypatch.setattr(AmoCrmClient, "__init__", impatient)

    assert _route(aws, [lead])["batchItemFailures"]
    wiring.reset()  # the retry lands on another Lambda instance
    assert _route(aws, [lead], receive_count=2) == {"batchItemFailures": []}

    assert len(amo.leads_named_with(lead.lead_id)) == 1
    assert aws.store.leads.get(lead.lead_id).crm_id == str(amo.leads_named_with(lead.lead_id)[0]["id"])


def _webhook(body: str, secret: str = SECRET) -> dict:
    event = api_gateway_event(
        "POST", "/webhooks/amocrm", f"secret={secret}", FORM, body.encode(), "127.0.0.1"
    )
    return invoke("ingest", event)


def test_a_stage_changed_in_amocrm_flows_back_to_the_lead(aws, amo):
    clock.freeze(SATURDAY_NOON)
    lead = _qualified_lead(aws, 5)
    assert _route(aws, [lead]) == {"batchItemFailures": []}
    crm_id = int(aws.store.leads.get(lead.lead_id).crm_id)

    amo.leads[crm_id]["status_id"] = SECOND_STAGE  # the manager took it in amoCRM
    assert _webhook(amo.status_webhook(crm_id, SECOND_STAGE))["statusCode"] == 200
    assert _webhook(amo.status_webhook(crm_id, SECOND_STAGE))["statusCode"] == 200  # amoCRM resends
    messages = aws.receive("RouteQueue")
    assert len(messages) == 1  # the repeat is dropped by ingest
    assert invoke("route", sqs_event(messages, "RouteQueue")) == {"batchItemFailures": []}

    stored = aws.store.leads.get(lead.lead_id)
    assert stored.status == "accepted" and stored.accepted_at
    assert aws.store.timers.get(f"sla#{lead.lead_id}") is None  # the SLA clock stopped


def test_a_webhook_without_the_secret_or_from_another_account_is_refused(aws, amo, monkeypatch):
    body = amo.status_webhook(123, SECOND_STAGE)
    assert _webhook(body, secret="guess")["statusCode"] == 403
    monkeypatch.setenv("AMOCRM_BASE_URL", "https://other-salon.amocrm.ru")
    wiring.reset()
    assert _webhook(body)["statusCode"] == 403
    assert aws.receive("RouteQueue") == []
