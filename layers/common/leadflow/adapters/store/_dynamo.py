"""Small helpers shared by the store classes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def spend_once(table: Any, pk: str, now_s: int) -> dict | None:
    """Delete an unexpired one-time item (an invite, a login link) and return it; None when it is
    unknown, expired or already spent. A conditional delete: of two concurrent spends one wins."""
    try:
        answer = table.delete_item(
            Key={"pk": pk},
            ConditionExpression="attribute_exists(pk) AND expires_at > :now",
            ExpressionAttributeValues={":now": now_s},
            ReturnValues="ALL_OLD",
        )
    except ClientError as exc:
        if is_conditional_failure(exc):
            return None
        raise
    return dict(answer["Attributes"])


def plain(value: Any) -> Any:
    """DynamoDB's Decimals back to int/float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, set):
        return {plain(v) for v in value}
    return value


def storable(value: Any) -> Any:
    """Floats to Decimal, drop None (DynamoDB needs no nulls), recursively."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: storable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value
