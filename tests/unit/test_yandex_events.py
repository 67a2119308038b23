"""The Yandex Cloud sample events (events/yandex/, written from Yandex Cloud's documentation) run
through the real handlers: API Gateway payload 1.0 reaches ingest, Message Queue trigger batches
reach score and route, timer triggers tick escalate and remind. A failed record goes back to its
queue with its attempt counter and the batch is done; the last attempt goes to the DLQ with its
reason; a retried record is known to be a redelivery (Bitrix24 looks for its earlier write)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from leadflow import clock, wiring
from leadflow.adapters.crm import BuiltinCrm
from leadflow.adapters.crm.base import CrmUnavailable
from leadflow.adapters.platform import yandex
from leadflow_local.functions import invoke
from tests.support.builders import use_crm
from tests.support.webhooks import EVENTS, SECRETS
from tests.unit.test_events import seed_lead

YANDEX = EVENTS / "yandex"


def sample(name: str) -> dict:
    return json.loads((YANDEX / name).read_text(encoding="utf-8"))


def on_queue(event: dict, queue_url: str, attempt: int | None = None, age_s: float = 1) -> dict:
    """The sample as the trigger of the stack's queue would deliver it (the queue's name ends its
    id), sent ``age_s`` ago."""
    name = queue_url.rsplit("/", 1)[-1]
    for message in event["messages"]:
        message["details"]["queue_id"] = f"yrn:yc:ymq:ru-central1:b1g88tflru0e:{name}"
        message["details"]["message"]["attributes"]["SentTimestamp"] = str(int((time.time() - age_s) * 1000))
        if attempt is not None:
            message["details"]["message"]["message_attributes"] = {
                yandex.ATTEMPT_ATTRIBUTE: {"dataType": "String", "stringValue": str(attempt)}
            }
    return event


class FlakyCrm(BuiltinCrm):
    """The built-in CRM that is down `failures` times, and remembers whether each push was a redelivery."""

    def __init__(self, failures: int = 0):
        self.failures = failures
        self.redelivered: list[bool] = []

    def push(self, leads, business, redelivered=False):
        self.redelivered.append(redelivered)
        if self.failures:
            self.failures -= 1
            raise CrmUnavailable("503 from the portal")
        return super().push(leads, business, redelivered)


@pytest.fixture
def stack(aws, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    clock.freeze(datetime(2025, 3, 8, 9, 0, tzinfo=UTC))
    return aws


def test_api_gateway_form_post_is_taken_and_queued_for_score(stack):
    answer = invoke("ingest", sample("ingest_form.json"))
    assert answer["statusCode"] == 200
    (queued,) = stack.receive("ScoreQueue")
    message = json.loads(queued["Body"])
    assert message["channel"] == "form" and message["contact"]["name"] == "Ольга"


def test_api_gateway_get_with_a_query_answers_the_whatsapp_challenge(stack):
    answer = invoke("ingest", sample("ingest_whatsapp_verify.json"))
    assert (answer["statusCode"], answer["body"]) == (200, "1158201444")


def test_queue_trigger_batch_makes_a_lead_and_answers(stack):
    event = on_queue(sample("score_inbound_message.json"), stack.queue_urls["ScoreQueue"])
    assert invoke("score", event) == {"batchItemFailures": [], "requeued": 0}
    (item,) = stack.store.leads.table.scan()["Items"]
    replies = [m for m in stack.store.conversation.outbound(item["lead_id"]) if m["kind"] == "reply"]
    assert replies and replies[0]["status"] == "sent"


def ready_lead(stack, age_s: float = 1) -> tuple[dict, str]:
    event = on_queue(sample("route_lead_ready.json"), stack.queue_urls["RouteQueue"], age_s=age_s)
    lead_id = json.loads(event["messages"][0]["details"]["message"]["body"])["lead_id"]
    seed_lead(stack, lead_id, "olga")
    stack.store.leads.mutate(lead_id, lambda lead: lead.model_copy(update={"owner": None, "routed": False}))
    return event, lead_id


def test_a_failed_record_waits_before_its_next_attempt(stack, monkeypatch):
    use_crm(monkeypatch, FlakyCrm(failures=1))
    event, _ = ready_lead(stack)
    assert invoke("route", event) == {"batchItemFailures": [], "requeued": 1}
    attributes = stack.sqs().get_queue_attributes(
        QueueUrl=stack.queue_urls["RouteQueue"], AttributeNames=["All"]
    )["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesDelayed"]) == (
        "0",
        "1",
    )
    assert [yandex.retry_delay_s(n) for n in range(1, 7)] == [30, 60, 120, 240, 480, 900]


def test_a_failed_record_goes_back_to_its_queue_with_its_attempt_and_the_batch_is_done(stack, monkeypatch):
    crm = FlakyCrm(failures=1)
    use_crm(monkeypatch, crm)
    monkeypatch.setattr(yandex, "FIRST_RETRY_DELAY_S", 0)  # read the retry now, not in 30 s
    event, lead_id = ready_lead(stack)

    # The whole batch succeeds for the trigger (nothing returned to the queue by Yandex) ...
    assert invoke("route", event) == {"batchItemFailures": [], "requeued": 1}
    (again,) = stack.receive("RouteQueue")
    assert again["Body"] == event["messages"][0]["details"]["message"]["body"]
    assert again["MessageAttributes"][yandex.ATTEMPT_ATTRIBUTE]["StringValue"] == "2"

    # ... and the second attempt, delivered by the trigger, is known to be a redelivery.
    retry = on_queue(sample("route_lead_ready.json"), stack.queue_urls["RouteQueue"], attempt=2)
    assert invoke("route", retry) == {"batchItemFailures": [], "requeued": 0}
    assert crm.redelivered == [False, True]
    routed = stack.store.leads.get(lead_id)
    assert routed.owner and routed.card and stack.store.timers.get(f"sla#{lead_id}") is not None
    assert not stack.receive("RouteQueue")


def test_a_batch_returned_by_a_crash_is_taken_as_a_redelivery_though_nothing_counted_it(stack, monkeypatch):
    # The invocation that took it timed out: the trigger returned the whole batch to the queue,
    # which kept it invisible for the trigger's visibility timeout (minutes), with no counter.
    crm = FlakyCrm()
    use_crm(monkeypatch, crm)
    event, lead_id = ready_lead(stack, age_s=6 * 60)
    assert invoke("route", event) == {"batchItemFailures": [], "requeued": 0}
    assert crm.redelivered == [True]  # Bitrix24 looks for what the dead invocation may have written
    assert stack.store.leads.get(lead_id).card


def test_the_last_attempt_goes_to_the_dlq_with_its_reason(stack, monkeypatch):
    use_crm(monkeypatch, FlakyCrm(failures=1))
    event, _ = ready_lead(stack)
    dlq = stack.queue_urls["RouteDeadLetterQueue"]
    env = {"DLQ_URL": dlq, "LEADFLOW_MAX_RECEIVES": "3"}
    last = on_queue(event, stack.queue_urls["RouteQueue"], attempt=3)

    assert invoke("route", last, env) == {"batchItemFailures": [], "requeued": 0}
    assert not stack.receive("RouteQueue")
    (dead,) = stack.receive("RouteDeadLetterQueue")
    assert "503 from the portal" in dead["MessageAttributes"]["reason"]["StringValue"]
    assert dead["MessageAttributes"]["source_queue"]["StringValue"].endswith("RouteQueue")


def test_a_record_whose_queue_is_unknown_fails_the_whole_batch_rather_than_be_lost(stack, monkeypatch):
    use_crm(monkeypatch, FlakyCrm(failures=1))
    event, _ = ready_lead(stack)
    event["messages"][0]["details"]["queue_id"] = "yrn:yc:ymq:ru-central1:b1g88tflru0e:some-other-queue"
    with pytest.raises(RuntimeError, match="no queue URL"):
        invoke("route", event)


@pytest.mark.parametrize("function", ["escalate", "remind"])
def test_timer_triggers_run_their_job(stack, function):
    assert "timers" in invoke(function, sample(f"{function}_timer.json"))
