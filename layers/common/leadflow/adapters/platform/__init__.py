"""The cloud an invocation comes from, and its event in the shape the steps read (AWS's).

The steps and the domain read AWS's shapes: an HTTP API (payload 2.0) event, an SQS event source
batch, an EventBridge schedule tick. ``aws_shaped`` turns another cloud's event into that shape
(Yandex Cloud: ``yandex.py``) and leaves an AWS event as it is; ``attempt`` and ``settle`` are what
differs in a queue batch (how a record knows which delivery it is, and what a failed record
becomes). The cloud is told by the event itself; ``LEADFLOW_PLATFORM`` names it for what no event
shows (the Document API's limits, ``settings().leadflow_platform``).
"""

from __future__ import annotations

import time
from typing import Any

from leadflow.adapters.platform import yandex

AWS = "aws"
YANDEX = "yandex"


def platform_of(event: Any) -> str:
    """``yandex`` for an event only Yandex Cloud sends, else ``aws``."""
    return YANDEX if yandex.is_yandex_event(event) else AWS


def aws_shaped(event: Any) -> Any:
    """The event as the steps read it: an AWS event unchanged, a Yandex Cloud one translated."""
    if yandex.is_yandex_event(event):
        return yandex.to_aws_shape(event)
    return event


def attempt(record: dict[str, Any]) -> int:
    """Which delivery of this queue record this is (1 = the first)."""
    if record.get("eventSource") == yandex.EVENT_SOURCE:
        return yandex.attempt(record)
    return int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)


def _all_from(event: dict[str, Any], source: str) -> bool:
    records = event.get("Records") or []
    return bool(records) and all(r.get("eventSource") == source for r in records)


def is_yandex_batch(event: dict[str, Any]) -> bool:
    return _all_from(event, yandex.EVENT_SOURCE)


def is_stream_batch(event: dict[str, Any]) -> bool:
    """A DynamoDB stream batch (the leads table's changes for the panel's tally)."""
    return _all_from(event, "aws:dynamodb")


def may_be_redelivered(record: dict[str, Any], now: float | None = None) -> bool:
    """Could an earlier delivery of this record have done part of its work (and died)? On AWS: a
    receive count above 1. On Yandex Cloud a crash or a timeout returns the batch without counting,
    so an old message counts as a redelivery too (a false "yes" costs one CRM lookup)."""
    if attempt(record) > 1:
        return True
    if record.get("eventSource") != yandex.EVENT_SOURCE:
        return False
    return yandex.is_old(record, time.time() if now is None else now)
