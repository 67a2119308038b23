"""Cost of the front door: AWS requests per accepted webhook — one PutItem (the raw payload and the
dedupe mark), one SendMessage, one UpdateItem marking it queued; a Telegram message also reads the
staff chat table once (a staff chat's message goes to route, a client's to score)."""

from __future__ import annotations

from collections import Counter

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
ACCEPTED = {"dynamodb.PutItem": 1, "sqs.SendMessage": 1, "dynamodb.UpdateItem": 1}
# Updates whose chat decides who wrote them: one GetItem of the staff chat table each.
CHAT_LOOKUP = {"telegram/text_message"}


@pytest.mark.parametrize("path", ONE_MESSAGE, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_an_accepted_webhook_costs_one_put_one_send_and_one_mark(env, aws_calls, configure_for, path):
    configure_for(path)
    lookup = (
        Counter({"dynamodb.GetItem": 1}) if f"{path.parent.name}/{path.stem}" in CHAT_LOOKUP else Counter()
    )
    event = delivery(path)
    assert ingest(event)["status"] == 200
    assert dict(aws_calls.calls) == dict(Counter(ACCEPTED) + lookup)
    # a duplicate costs the conditional write alone (and the chat lookup that comes before it)
    aws_calls.reset()
    assert ingest(event)["status"] == 200
    assert dict(aws_calls.calls) == dict(Counter({"dynamodb.PutItem": 1}) + lookup)


def test_refused_and_unused_webhooks_cost_nothing(env, aws_calls):
    forged = delivery(EVENTS / "whatsapp" / "text.json")
    forged["headers"]["x-hub-signature-256"] = "sha256=" + "0" * 64
    assert ingest(forged)["status"] == 403
    assert ingest(delivery(EVENTS / "whatsapp" / "status_update.json"))["status"] == 200
    assert ingest(delivery(EVENTS / "ingest" / "whatsapp_verify.json"))["status"] == 200
    assert aws_calls.total == 0


def test_a_delivery_of_several_messages_costs_a_put_a_send_and_a_mark_each(env, aws_calls):
    assert ingest(delivery(EVENTS / "whatsapp" / "several_messages.json"))["status"] == 200
    assert dict(aws_calls.calls) == {"dynamodb.PutItem": 3, "sqs.SendMessage": 3, "dynamodb.UpdateItem": 3}
