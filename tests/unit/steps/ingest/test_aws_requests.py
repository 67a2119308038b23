"""Cost of the front door: AWS requests per accepted webhook (target: one PutItem, one SendMessage)."""

from __future__ import annotations

import pytest

from tests.support.webhooks import EVENTS, delivery, ingest

ONE_MESSAGE = [
    EVENTS / "telegram" / "text_message.json",
    EVENTS / "whatsapp" / "text.json",
    EVENTS / "instagram" / "text.json",
    EVENTS / "vk" / "message_new.json",
    EVENTS / "form" / "tilda_urlencoded.json",
    EVENTS / "call" / "mango_summary_missed.json",
    EVENTS / "sms" / "inbound_da_smsc.json",
    EVENTS / "bitrix24" / "deal_update.json",
    EVENTS / "telegram" / "callback_query.json",
]


@pytest.mark.parametrize("path", ONE_MESSAGE, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_an_accepted_webhook_costs_one_put_and_one_send(env, aws_calls, path):
    event = delivery(path)
    assert ingest(event)["status"] == 200
    assert dict(aws_calls.calls) == {"dynamodb.PutItem": 1, "sqs.SendMessage": 1}
    # a duplicate costs the conditional write alone
    aws_calls.reset()
    assert ingest(event)["status"] == 200
    assert dict(aws_calls.calls) == {"dynamodb.PutItem": 1}


def test_refused_and_unused_webhooks_cost_nothing(env, aws_calls):
    forged = delivery(EVENTS / "whatsapp" / "text.json")
    forged["headers"]["x-hub-signature-256"] = "sha256=" + "0" * 64
    assert ingest(forged)["status"] == 403
    assert ingest(delivery(EVENTS / "whatsapp" / "status_update.json"))["status"] == 200
    assert ingest(delivery(EVENTS / "ingest" / "whatsapp_verify.json"))["status"] == 200
    assert aws_calls.total == 0


def test_a_delivery_of_several_messages_costs_a_put_and_a_send_each(env, aws_calls):
    assert ingest(delivery(EVENTS / "whatsapp" / "several_messages.json"))["status"] == 200
    assert dict(aws_calls.calls) == {"dynamodb.PutItem": 3, "sqs.SendMessage": 3}
