"""The walking skeleton in-process: a Telegram message through ingest → score → route handlers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from leadflow import clock
from leadflow_local.functions import invoke
from leadflow_local.stack import api_gateway_event, sqs_event


def test_telegram_message_becomes_an_owned_lead_with_a_reply(aws, monkeypatch):
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret")
    clock.freeze(datetime(2026, 3, 14, 4, 0, tzinfo=UTC))  # Saturday 11:00 in Krasnoyarsk
    update = {
        "update_id": 1, "message": {"message_id": 1, "date": int(clock.now().timestamp()),
        "chat": {"id": 42, "type": "private"}, "from": {"id": 42, "is_bot": False, "first_name": "Ирина"},
        "text": "Хочу на маникюр завтра в 15:00, тел 89138402765"},
    }  # fmt: skip
    event = api_gateway_event("POST", "/webhooks/telegram", "", {"X-Telegram-Bot-Api-Secret-Token": "s3cret"},
                              json.dumps(update).encode(), "127.0.0.1")  # fmt: skip
    assert invoke("ingest", event)["statusCode"] == 200

    score_batch = aws.receive("ScoreQueue")
    assert len(score_batch) == 1
    assert invoke("score", sqs_event(score_batch, "ScoreQueue")) == {"batchItemFailures": []}
    route_batch = aws.receive("RouteQueue")
    assert invoke("route", sqs_event(route_batch, "RouteQueue")) == {"batchItemFailures": []}

    (item,) = aws.store.leads.table.scan()["Items"]
    lead = aws.store.leads.get(item["lead_id"])
    assert lead is not None
    assert (lead.service, str(lead.preferred_date), lead.preferred_time) == (
        "manicure",
        "2026-03-15",
        "15:00",
    )
    assert lead.owner in {"anna", "katya"} and lead.status == "assigned"
    kinds = sorted(m["kind"] for m in aws.store.conversation.outbound(lead.lead_id))
    assert kinds == ["lead_card", "reply"]
