"""Budgets counted across every container (RateLimitTable, pk ``pk``): how many automatic SMS a
phone got today, how many the business sent this hour, how many automatic replies a chat got in
the last minutes. One conditional UpdateItem per count; each item expires with its window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.store._dynamo import is_conditional_failure


class CounterStore:
    def __init__(self, table: Any):
        self.table = table

    def take(self, key: str, limit: int, expires_at: datetime) -> bool:
        """Count one more under ``key`` if fewer than ``limit`` were counted; False when the budget is spent."""
        try:
            self.table.update_item(
                Key={"pk": f"count#{key}"},
                UpdateExpression="ADD n :one SET expires_at = if_not_exists(expires_at, :exp)",
                ConditionExpression="attribute_not_exists(n) OR n < :limit",
                ExpressionAttributeValues={":one": 1, ":limit": limit, ":exp": int(expires_at.timestamp())},
            )
            return True
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
