"""route as the route queue drives it: each ready lead of a batch once, its owner's card and SLA
clock; a CRM that refuses a lead for good costs the lead nothing but a warning, one that is down
for now gets the record retried."""

from __future__ import annotations

from leadflow import clock
from leadflow.adapters.crm import Pushed
from leadflow.domain.models import Lead, LeadReady
from leadflow_local.functions import invoke
from leadflow_local.stack import sqs_event
from tests.support.builders import SATURDAY_11, RecordingCrm, client_writes, sent, use_crm

COMPLETE = "Хочу на маникюр завтра в 15:00, тел 89138402765"


class PushingCrm(RecordingCrm):
    """Records each push; answers with ``answer(lead)`` (a CRM id by default)."""

    def __init__(self, answer=None) -> None:
        super().__init__()
        self.pushes: list[list[str]] = []
        self.answer = answer or (lambda lead: Pushed(lead.lead_id, f"crm-{lead.lead_id}", "lead"))

    def push(self, leads, business, redelivered=False):
        self.pushes.append([lead.lead_id for lead, _ in leads])
        return [self.answer(lead) for lead, _ in leads]


def _ready(aws, chat: str = "70001") -> str:
    """A complete lead from score; the LeadReady score sent is dropped (the test routes it)."""
    lead = client_writes(aws.store, COMPLETE, chat=chat)
    aws.receive("RouteQueue")
    return lead.lead_id


def _route(*lead_ids: str) -> list[str]:
    """One route invocation with a LeadReady per id; the records it reports failed."""
    records = [
        {"MessageId": f"r{n}", "ReceiptHandle": "rh", "Body": LeadReady(lead_id=lead_id).model_dump_json(),
         "Attributes": {"ApproximateReceiveCount": "1"}}
        for n, lead_id in enumerate(lead_ids)
    ]  # fmt: skip
    answer = invoke("route", sqs_event(records, "RouteQueue"))
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def _lead(aws, lead_id: str) -> Lead:
    lead = aws.store.leads.get(lead_id)
    assert lead is not None
    return lead


def test_a_lead_twice_in_one_batch_is_routed_once(aws, monkeypatch):
    crm = PushingCrm()
    use_crm(monkeypatch, crm)
    clock.freeze(SATURDAY_11)
    lead_id = _ready(aws)
    other = _ready(aws, chat="70002")

    assert _route(lead_id, other, lead_id) == []

    # One CRM push for the batch, each lead in it once; one card each; capacity taken once
    assert crm.pushes == [[lead_id, other]]
    for each in (lead_id, other):
        lead = _lead(aws, each)
        assert lead.owner in {"anna", "katya"} and lead.crm_id == f"crm-{each}"
        assert len(sent(aws.store, each, "lead_card")) == 1
        assert aws.store.timers.get(f"sla#{each}") is not None
    owners = [_lead(aws, each).owner for each in (lead_id, other)]
    state = aws.store.staff.state(sorted(set(owners)))
    assert sum(s.open_leads for s in state.values()) == 2


def test_a_crm_that_refuses_a_lead_for_good_does_not_dead_letter_it(aws, monkeypatch):
    refusal = "Не заполнено обязательное поле «Город»"
    use_crm(monkeypatch, PushingCrm(lambda lead: Pushed(lead.lead_id, None, error=refusal)))
    clock.freeze(SATURDAY_11)
    lead_id = _ready(aws)

    # The record is done (not retried, not dead-lettered)
    assert _route(lead_id) == []
    assert aws.receive("RouteDeadLetterQueue") == []
    # The lead has its owner, card and SLA clock; the card says what the CRM said
    lead = _lead(aws, lead_id)
    assert lead.owner in {"anna", "katya"} and lead.crm_id is None and lead.crm_error == refusal
    (card,) = sent(aws.store, lead_id, "lead_card")
    assert f"⚠️ CRM не приняла лид: {refusal}" in card["text"]
    assert aws.store.timers.get(f"sla#{lead_id}") is not None
    # and the senior is told, once
    (problem,) = sent(aws.store, lead_id, "crm_problem")
    assert problem["to"] == "staff:elena" and refusal in problem["text"]
    assert _route(lead_id) == []
    assert len(sent(aws.store, lead_id, "crm_problem")) == 1


def test_a_crm_that_is_down_gets_the_record_retried_and_the_retry_finishes_the_lead(aws, monkeypatch):
    down = PushingCrm(
        lambda lead: Pushed(lead.lead_id, None, error="503 Service Unavailable", retryable=True)
    )
    use_crm(monkeypatch, down)
    clock.freeze(SATURDAY_11)
    lead_id = _ready(aws)

    assert _route(lead_id) == ["r0"]  # retried by SQS
    owner = _lead(aws, lead_id).owner
    assert owner in {"anna", "katya"} and sent(aws.store, lead_id, "lead_card") == []

    # When the CRM is back, the retry keeps the owner and sends the card, once
    down.answer = lambda lead: Pushed(lead.lead_id, "crm-1", "lead")
    assert _route(lead_id) == []
    lead = _lead(aws, lead_id)
    assert (lead.owner, lead.crm_id, lead.crm_error) == (owner, "crm-1", None)
    assert len(sent(aws.store, lead_id, "lead_card")) == 1
    assert aws.store.staff.state([owner])[owner].open_leads == 1
