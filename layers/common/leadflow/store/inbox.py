"""Raw webhook payloads and the dedupe mark (InboxTable, pk ``key`` = the message's dedupe key).

Ingest writes the item before acknowledging; the consumer marks it ``done`` when the message
has been fully handled. A redelivery of something not yet done is accepted again (the queue
copy may have been lost); one that is done is a no-op. So the dedupe mark only becomes final
once the message was processed — never on a write whose enqueue failed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from leadflow.store._dynamo import is_conditional_failure

RAW_TTL = timedelta(days=14)


class InboxStore:
    def __init__(self, table: Any):
        self.table = table

    def accept(self, key: str, channel: str, raw: str, message: str, now: datetime) -> bool:
        """Store the raw payload and the queue message; False when it was already processed."""
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
                ConditionExpression="attribute_not_exists(#k) OR #s <> :done",
                ExpressionAttributeNames={"#k": "key", "#s": "status"},
                ExpressionAttributeValues={":done": "done"},
            )
            return True
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
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
