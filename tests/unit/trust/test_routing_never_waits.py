"""Item 2: a reply that cannot go out never stops routing — the lead gets its owner, card and SLA
timer whatever happened to the answer to the client."""

from __future__ import annotations

import pytest

from leadflow import wiring
from leadflow_local.functions import invoke
from leadflow_local.stack import sqs_event
from tests.support.workspace import Workspace, start_workspace


@pytest.fixture
def ws(aws, monkeypatch) -> Workspace:
    return start_workspace(aws, monkeypatch, None)


def only_lead(ws: Workspace):
    (item,) = ws.aws.store.leads.table.scan()["Items"]  # type: ignore[attr-defined]
    return ws.lead(item["lead_id"])


def test_item_2_sms_configured_without_its_key_still_routes_and_says_why(ws, aws, monkeypatch):
    # Given SMS switched on (smsru) but its key was never set
    monkeypatch.setenv("SMS_PROVIDER", "smsru")
    monkeypatch.delenv("SMS_API_KEY", raising=False)
    wiring.reset()
    # When a site form arrives (its answer would be an SMS)
    assert (
        ws.post(
            ws.hooks.tilda_form(
                {"name": "Анна", "phone": "+7 913 555-12-34", "comment": "маникюр завтра в 12"}
            )
        )
        == 200
    )
    ws.run()
    # Then the lead has its owner, card and SLA clock; the SMS is recorded as failed with the reason
    lead = only_lead(ws)
    assert lead.owner and lead.card
    assert aws.store.timers.get(f"sla#{lead.lead_id}") is not None
    (reply,) = ws.outbox(lead.lead_id, "reply")
    assert reply["status"] == "failed" and "SMS не настроены" in reply["error"]


def test_item_2_a_crash_in_the_reply_hands_the_lead_on_and_the_retry_answers_once(ws, aws, monkeypatch):
    from leadflow.adapters.messenger import Messenger

    calls = {"n": 0}
    original = Messenger.to_client

    def crashing_once(self, lead, message_id, kind, text):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug in a channel client")
        return original(self, lead, message_id, kind, text)

    monkeypatch.setattr(Messenger, "to_client", crashing_once)
    assert (
        ws.post(
            ws.hooks.tilda_form(
                {"name": "Анна", "phone": "+7 913 555-12-35", "comment": "маникюр завтра в 12"}
            )
        )
        == 200
    )
    # When score's reply crashes: the record is reported failed (SQS will redeliver it)…
    batch = aws.receive("ScoreQueue")
    result = invoke("score", sqs_event(batch, "ScoreQueue"))
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [batch[0]["MessageId"]]
    # …but the lead was handed on first: route gives it its owner and card now
    ws.route(aws.receive("RouteQueue"))
    lead = only_lead(ws)
    assert lead.owner and lead.card
    assert ws.outbox(lead.lead_id, "reply") == [] or all(
        r["status"] != "sent" for r in ws.outbox(lead.lead_id, "reply")
    )
    # And the redelivery answers the client, once
    assert invoke("score", sqs_event(batch, "ScoreQueue")) == {"batchItemFailures": []}
    assert invoke("score", sqs_event(batch, "ScoreQueue")) == {"batchItemFailures": []}
    replies = [r for r in ws.outbox(lead.lead_id, "reply") if r["status"] == "sent"]
    assert len(replies) == 1
