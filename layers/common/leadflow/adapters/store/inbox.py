"""Raw webhook payloads and the dedupe mark (InboxTable, pk ``key`` = the message's dedupe key).

Ingest writes the item before acknowledging; the consumer marks it ``done`` when the message
has been fully handled. A redelivery is a no-op while the first copy is on its way (``received``
and its lease still running) or once it was processed (``done``). It is accepted again when the
enqueue failed (``failed``, set by ingest) or when the lease ran out without the message being
done — the invocation that wrote it may have died before enqueueing. So the dedupe mark only
becomes final once the message was processed — never on a write whose enqueue failed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.store._dynamo import is_conditional_failure

RAW_TTL = timedelta(days=14)
# Long enough to cover a normal trip through the score queue, short enough that a copy lost
# between the write and the enqueue is taken again on the platform's next retry.
ACCEPT_LEASE = timedelta(minutes=5)


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
                    "lease_until": int((now + ACCEPT_LEASE).timestamp()),
                    "expires_at": int((now + RAW_TTL).timestamp()),
                },
                ConditionExpression=(
                    "attribute_not_exists(#k) OR #s = :failed OR (#s = :received AND #l < :now)"
                ),
                ExpressionAttributeNames={"#k": "key", "#s": "status", "#l": "lease_until"},
                ExpressionAttributeValues={
                    ":failed": "failed",
                    ":received": "received",
                    ":now": int(now.timestamp()),
                },
            )
            return True
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise

    def release(self, key: str) -> None:
        """The enqueue after ``accept`` failed: the platform's redelivery must be taken at once."""
        try:
            self.table.update_item(
                Key={"key": key},
                UpdateExpression="SET #s = :failed",
                ConditionExpression="#s = :received",  # never undo a done
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":failed": "failed", ":received": "received"},
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

    def get(self, key: str) -> dict | None:
        return self.table.get_item(Key={"key": key}).get("Item")
