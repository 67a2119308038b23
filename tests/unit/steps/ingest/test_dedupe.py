"""Platforms deliver at least once: a duplicate is a no-op, a failed enqueue is taken again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from leadflow import clock, failpoints, wiring
from leadflow_local.functions import invoke
from leadflow_local.stack import sqs_event
from tests.support.webhooks import EVENTS, delivery, ingest

NOW = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    clock.freeze(NOW)


def _fail_send_message(times: int, after: int = 0):
    """A botocore hook: the SendMessage calls after the first ``after`` fail ``times`` times."""
    seen = {"calls": 0}

    def hook(**_: object) -> None:
        seen["calls"] += 1
        if after < seen["calls"] <= after + times:
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "sqs is down"}}, "SendMessage"
            )

    return hook


@pytest.fixture
def sqs_fails(env):
    events = wiring.score_queue().sqs.meta.events

    def install(times: int, after: int = 0) -> None:
        events.register(
            "before-call.sqs.SendMessage", _fail_send_message(times, after), unique_id="sqs-fails"
        )

    yield install
    events.unregister("before-call.sqs.SendMessage", unique_id="sqs-fails")


def test_the_same_delivery_twice_queues_one_message(env, logs, frozen):
    # Given a Telegram message that was accepted and is on its way to score
    event = delivery(EVENTS / "telegram" / "text_message.json")
    assert ingest(event)["status"] == 200
    # When Telegram delivers it again a few seconds later
    clock.advance(timedelta(seconds=20))
    again = ingest(event)
    # Then Telegram gets its 200 and nothing new is queued or stored
    assert (again["status"], again["body"]) == (200, "ok")
    assert len(env.receive("ScoreQueue")) == 1
    assert len(env.store.inbox.table.scan()["Items"]) == 1


def test_a_redelivery_after_the_message_was_processed_is_a_no_op(env, logs, frozen):
    # Given a WhatsApp message queued (so marked) and handled by score
    event = delivery(EVENTS / "whatsapp" / "text.json")
    assert ingest(event)["status"] == 200
    batch = env.receive("ScoreQueue")
    assert invoke("score", sqs_event(batch, "ScoreQueue")) == {"batchItemFailures": []}
    (item,) = env.store.inbox.table.scan()["Items"]
    assert item["status"] == "queued"
    # When Meta redelivers it a day later (within the raw payload's TTL)
    clock.advance(timedelta(days=1))
    assert ingest(event)["status"] == 200
    # Then nothing is queued again: no second reply, no second lead
    assert env.receive("ScoreQueue") == []


def test_a_delivery_whose_enqueue_failed_is_taken_on_redelivery(env, logs, frozen, sqs_fails):
    # Given SQS refuses the first SendMessage
    sqs_fails(times=1)
    event = delivery(EVENTS / "vk" / "message_new.json")
    # When VK delivers the message, the invocation fails (API Gateway answers 500, VK retries)
    with pytest.raises(ClientError):
        ingest(event)
    assert env.receive("ScoreQueue") == []
    (item,) = env.store.inbox.table.scan()["Items"]
    assert item["status"] == "received"  # stored, never known to be queued
    # Then VK's retry a few seconds later is taken and queued, once
    clock.advance(timedelta(seconds=10))
    assert ingest(event) == {"status": 200, "body": "ok", "content_type": "text/plain; charset=utf-8"}
    assert len(env.receive("ScoreQueue")) == 1
    assert ingest(event)["status"] == 200
    assert env.receive("ScoreQueue") == []
    assert '"message":"enqueue failed"' in logs.text


def test_a_partly_failed_delivery_is_completed_by_the_redelivery(env, logs, frozen, sqs_fails):
    # Given a WhatsApp delivery of three messages, the second of which SQS refuses
    sqs_fails(times=1, after=1)
    event = delivery(EVENTS / "whatsapp" / "several_messages.json")
    with pytest.raises(ClientError):
        ingest(event)
    first = [m["Body"] for m in env.receive("ScoreQueue")]
    assert len(first) == 1
    # When Meta redelivers the whole notification
    assert ingest(event)["status"] == 200
    # Then the two missing messages are queued and the one already queued is not repeated
    second = [m["Body"] for m in env.receive("ScoreQueue")]
    assert len(second) == 2 and not set(first) & set(second)


class Killed(Exception):
    """The Lambda runtime killing the invocation at a failpoint."""


@pytest.fixture
def dies_at(monkeypatch):
    """The invocation dies at the named failpoint, once (the Lambda is killed there)."""

    def install(name: str) -> None:
        def hit(point: str) -> None:
            if point == name:
                monkeypatch.setattr(failpoints, "hit", lambda point: None)
                raise Killed(point)

        monkeypatch.setattr(failpoints, "hit", hit)

    return install


def test_a_copy_lost_between_write_and_enqueue_is_taken_on_the_next_retry(env, logs, frozen, dies_at):
    # Given an invocation that stored the message and died before enqueueing it
    dies_at("ingest.after_store")
    event = delivery(EVENTS / "instagram" / "text.json")
    with pytest.raises(Killed):
        ingest(event)
    assert env.receive("ScoreQueue") == []
    # When Instagram retries (the item was never marked queued), the message is queued, once
    clock.advance(timedelta(seconds=30))
    assert ingest(event)["status"] == 200
    assert len(env.receive("ScoreQueue")) == 1
    # Then later retries are duplicates
    assert ingest(event)["status"] == 200
    assert env.receive("ScoreQueue") == []


def test_a_crash_between_enqueue_and_mark_queues_a_second_copy_never_none(env, logs, frozen, dies_at):
    # Given an invocation that enqueued the message and died before marking it queued
    dies_at("ingest.after_enqueue")
    event = delivery(EVENTS / "vk" / "message_new.json")
    with pytest.raises(Killed):
        ingest(event)
    # When VK retries, the message goes again (score recognises a message it has folded in)
    assert ingest(event)["status"] == 200
    first, second = env.receive("ScoreQueue")
    assert first["Body"] == second["Body"]
    (item,) = env.store.inbox.table.scan()["Items"]
    assert item["status"] == "queued"
    assert ingest(event)["status"] == 200
    assert env.receive("ScoreQueue") == []
