"""Due-time work (TimersTable, pk ``timer_id``; sparse index ``due``: pk ``queue``, sk ``due_at``).

A scheduled job asks the index for what is due on its queue — never a scan, so its cost grows
with what is due, not with what is stored. A job claims a timer by moving its ``due_at`` a
lease into the future, conditional on the ``due_at`` it read: of two overlapping runs exactly
one wins, and if the winner dies the timer comes due again when the lease ends.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from leadflow.adapters.store._dynamo import is_conditional_failure, plain, storable
from leadflow.clock import iso
from leadflow.domain.plans import Timer


class TimerStore:
    def __init__(self, table: Any):
        self.table = table

    def put(self, timer: Timer, *, only_if_new: bool = False) -> bool:
        kwargs: dict = {"Item": storable(timer.__dict__)}
        if only_if_new:
            kwargs["ConditionExpression"] = "attribute_not_exists(timer_id)"
        try:
            self.table.put_item(**kwargs)
            return True
        except ClientError as exc:
            if only_if_new and is_conditional_failure(exc):
                return False
            raise

    def get(self, timer_id: str) -> Timer | None:
        item = self.table.get_item(Key={"timer_id": timer_id}, ConsistentRead=True).get("Item")
        return _timer(item) if item else None

    def due(self, queue: str, now: datetime, limit: int = 100) -> list[Timer]:
        page = self.table.query(
            IndexName="due",
            KeyConditionExpression=Key("queue").eq(queue) & Key("due_at").lte(iso(now)),
            Limit=limit,
        )
        return [_timer(i) for i in page.get("Items", [])]

    def claim(self, timer: Timer, now: datetime, lease: timedelta = timedelta(minutes=5)) -> bool:
        try:
            self.table.update_item(
                Key={"timer_id": timer.timer_id},
                UpdateExpression="SET due_at = :lease ADD attempts :one",
                ConditionExpression="due_at = :seen",
                ExpressionAttributeValues={":lease": iso(now + lease), ":seen": timer.due_at, ":one": 1},
            )
            return True
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise

    def reschedule(self, timer_id: str, due: datetime, step: int, data: dict | None = None) -> None:
        """Move a timer on; one cancelled meanwhile stays cancelled."""
        expression = "SET due_at = :d, step = :s, attempts = :zero"
        values: dict = {":d": iso(due), ":s": step, ":zero": 0}
        names = {"#id": "timer_id"}
        if data is not None:
            expression += ", #data = :data"
            values[":data"] = storable(data)
            names["#data"] = "data"
        try:
            # Conditional: an unconditional update would resurrect a timer cancelled mid-step as a
            # keyless stub that blocks the next only_if_new put (a snoozed lead's fresh SLA).
            self.table.update_item(
                Key={"timer_id": timer_id},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(#id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise

    def give_up(self, timer: Timer, reason: str, now: datetime) -> None:
        """Off the due index for good (its ``queue`` becomes ``failed``), kept for the owner's
        «Проблемы» page with the reason."""
        try:
            self.table.update_item(
                Key={"timer_id": timer.timer_id},
                UpdateExpression="SET #q = :failed, failed_from = :queue, failed_reason = :reason, failed_at = :at",
                ConditionExpression="attribute_exists(timer_id)",
                ExpressionAttributeNames={"#q": "queue"},
                ExpressionAttributeValues={
                    ":failed": "failed", ":queue": timer.queue, ":reason": reason[:500], ":at": iso(now),
                },
            )  # fmt: skip
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise

    def given_up(self, limit: int = 50) -> list[dict]:
        """Timers that gave up (the ``failed`` queue of the due index), newest first, with their reason."""
        page = self.table.query(
            IndexName="due",
            KeyConditionExpression=Key("queue").eq("failed"),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [plain(item) for item in page.get("Items", [])]

    def cancel(self, timer_id: str) -> None:
        self.table.delete_item(Key={"timer_id": timer_id})

    def cancel_all(self, timer_ids: list[str]) -> None:
        """Several timers, whether they exist or not, in one request (BatchWriteItem; what it
        leaves unprocessed is sent again by boto3's batch writer)."""
        with self.table.batch_writer() as batch:
            for timer_id in dict.fromkeys(timer_ids):
                batch.delete_item(Key={"timer_id": timer_id})


_FIELDS = frozenset(Timer.__dataclass_fields__)


def _timer(item: dict) -> Timer:
    return Timer(**{k: v for k, v in plain(item).items() if k in _FIELDS})
