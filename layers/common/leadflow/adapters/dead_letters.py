"""Dead-lettered queue messages for the panel's «Проблемы»: list them with their reason, and move
one back to the queue it came from («Повторить»)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

KIND_LABEL = {
    "inbound": "сообщение клиента",
    "staff": "действие сотрудника",
    "crm": "событие CRM",
    "delivery": "отчёт о доставке SMS",
    "lead_ready": "лид к распределению",
}
PEEK_ROUNDS = 5  # at most 50 messages per queue are shown: a page, not an archive


@dataclass(frozen=True)
class DeadLetter:
    queue: str  # "score" / "route"
    message_id: str
    reason: str | None
    kind: str  # what the message was: an inbound message, a ready lead, a staff event…
    lead_id: str | None


class DeadLetters:
    def __init__(self, sqs: Any, queues: dict[str, tuple[str, str]]):
        """``queues``: name → (dead-letter queue URL, the URL of the queue it serves)."""
        self.sqs = sqs
        self.queues = queues

    def list(self) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        for name, (dlq_url, _) in self.queues.items():
            seen: set[str] = set()
            for _ in range(PEEK_ROUNDS):
                # VisibilityTimeout 0: looking hides nothing from a redrive or a second look.
                answer = self.sqs.receive_message(
                    QueueUrl=dlq_url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=0,
                    MessageAttributeNames=["All"],
                )
                fresh = [m for m in answer.get("Messages", []) if m["MessageId"] not in seen]
                if not fresh:
                    break
                for m in fresh:
                    seen.add(m["MessageId"])
                    found.append(_dead_letter(name, m))
        return found

    def redrive(self, queue: str, message_id: str) -> bool:
        """Send one dead letter back to its queue; False when it is no longer there."""
        if queue not in self.queues:
            return False
        dlq_url, source_url = self.queues[queue]
        for _ in range(PEEK_ROUNDS):
            answer = self.sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30)
            messages = answer.get("Messages", [])
            if not messages:
                return False
            target = next((m for m in messages if m["MessageId"] == message_id), None)
            for m in messages:
                if m is not target:  # the others are visible again at once
                    self.sqs.change_message_visibility(
                        QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
            if target is not None:
                # Sent first, then deleted: a crash between the two leaves a copy, never nothing.
                self.sqs.send_message(QueueUrl=source_url, MessageBody=target["Body"])
                self.sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=target["ReceiptHandle"])
                return True
        return False


def _dead_letter(queue: str, message: dict) -> DeadLetter:
    reason = message.get("MessageAttributes", {}).get("reason", {}).get("StringValue")
    kind, lead_id = "сообщение", None
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = None
    if isinstance(body, dict):
        kind = KIND_LABEL.get(str(body.get("type")), kind)
        found = body.get("lead_id")
        lead_id = str(found) if isinstance(found, str) else None
    return DeadLetter(queue, message["MessageId"], reason, kind, lead_id)
