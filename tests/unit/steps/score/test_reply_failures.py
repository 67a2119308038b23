"""A reply that fails for now never holds the lead back: score hands the lead to route first, then
the record fails so the queue retries the reply — which goes out once, to one lead."""

from __future__ import annotations

import functools

from leadflow import clock, wiring
from leadflow.adapters.channels.base import SendError, SendResult
from leadflow.adapters.messenger import OutboxSender
from leadflow.domain.models import OutboundMessage
from tests.support.builders import SATURDAY_11, message, only_lead, ready_messages, replies, score


class DownFor(OutboxSender):
    """The outbox, but the first ``times`` sends fail as a 429 would."""

    def __init__(self, channel: str, times: int):
        super().__init__(channel)
        self.left = times

    def send(self, message: OutboundMessage) -> SendResult:
        if self.left > 0:
            self.left -= 1
            raise SendError("429 Too Many Requests", retryable=True, retry_after=1)
        return super().send(message)


def test_a_reply_that_fails_for_now_is_retried_after_the_lead_was_handed_on(aws, monkeypatch):
    telegram = DownFor("telegram", times=1)
    # Cached like the real one, so wiring.reset() at the aws fixture's teardown still works.
    monkeypatch.setattr(wiring, "sender", functools.cache(lambda channel: telegram))
    clock.freeze(SATURDAY_11)
    booking = message(1, "Хочу на маникюр завтра в 15:00, тел 89138402765")

    # When the reply fails on the first delivery of the message
    assert score(aws, booking) == {"batchItemFailures": [{"itemIdentifier": booking.message_id}]}
    # Then the lead went to route all the same, and no reply counts as sent
    lead = only_lead(aws)
    assert [m["lead_id"] for m in ready_messages(aws)] == [lead.lead_id]
    assert [r["status"] for r in replies(aws)] == ["retry"]
    assert lead.first_reply_at is None

    # When SQS redelivers it, the reply goes out once and nothing else is repeated but the hand-on
    assert score(aws, booking, receive_count=2) == {"batchItemFailures": []}
    assert [r["status"] for r in replies(aws)] == ["sent"]
    assert len(aws.store.leads.table.scan()["Items"]) == 1
    assert only_lead(aws).first_reply_at == SATURDAY_11
    assert len(aws.store.conversation.history(lead.lead_id)) == 2  # the message once, the reply once
