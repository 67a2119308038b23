"""Raw webhook payloads and the dedupe mark (InboxTable, pk ``key`` = the message's dedupe key).

Ingest writes the item (``received``), enqueues, then marks it ``queued``; a staff event is marked
``done`` by route once handled. A platform's redelivery is a duplicate once the message is known
to be queued (``queued`` or ``done``). Anything else — ``received`` (the invocation that wrote it
may have died before its enqueue) or ``failed`` (its enqueue failed) — is taken and queued again:
the consumers are safe to run twice, a lost lead is not recoverable.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.store._dynamo import is_conditional_failure

RAW_TTL = timedelta(days=14)


class InboxStore:
    def __init__(self, table: Any):
        self.table = table

    def accept(self, key: str, channel: str, raw: str, message: str, now: datetime) -> bool:
        """Store the raw payload and the queue message; False for a duplicate (see module doc)."""
        try:
            self.table.put_item(
                Item={
                    "key": key,
                    "channel": channel,
                    "raw": raw,
                    "message": message,
                    "status": "received",
                    "received_at": now.isoformat(),
                    "expires_at": int((now + RAW_TTL).timestamp()),
                },
                ConditionExpression="attribute_not_exists(#k) OR #s IN (:failed, :received)",
                ExpressionAttributeNames={"#k": "key", "#s": "status"},
                ExpressionAttributeValues={":failed": "failed", ":received": "received"},
            )
            return True
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise

    def mark_queued(self, key: str) -> None:
        try:
            self.table.update_item(
                Key={"key": key},
                UpdateExpression="SET #s = :queued",
                ConditionExpression="#s IN (:received, :failed)",  # never undo a done
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":queued": "queued", ":received": "received", ":failed": "failed"},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise

    def is_done(self, key: str) -> bool:
        item = self.table.get_item(
            Key={"key": key}, ProjectionExpression="#s", ExpressionAttributeNames={"#s": "status"}
        ).get("Item")
        return bool(item and item.get("status") == "done")

    def mark_done(self, key: str) -> None:
        self.table.update_item(
            Key={"key": key},
            UpdateExpression="SET #s = :done",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":done": "done"},
        )

    def delete(self, keys: list[str]) -> int:
        with self.table.batch_writer() as batch:
            for key in keys:
                batch.delete_item(Key={"key": key})
        return len(keys)

    def get(self, key: str) -> dict | None:
        return self.table.get_item(Key={"key": key}).get("Item")
