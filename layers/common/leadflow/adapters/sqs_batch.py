"""SQS consumers' common frame: the Powertools batch utility with partial failures, and a
dead-letter hand-off that keeps the reason.

A record that fails is retried by SQS (batchItemFailures). On its last allowed receive — or at
once when it can never succeed (a message we do not understand) — it is moved to the DLQ by us,
with the reason as a message attribute, so `leadflow dlq` can show why and redrive it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from leadflow.adapters.queues import parse_queue_message, sqs_client
from leadflow.observability import logger, metrics
from leadflow.settings import env

MAX_RECEIVES = int(os.environ.get("LEADFLOW_MAX_RECEIVES", "5"))


class Poison(Exception):
    """A message that no retry can fix (unknown shape or version)."""


def _processor() -> BatchProcessor:
    # One per batch: a processor keeps the batch's records and outcomes on itself.
    # All records failing is reported like any partial failure: SQS retries exactly those.
    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def dead_letter(record: SQSRecord, reason: str) -> None:
    url = env("DLQ_URL")
    if not url:
        raise RuntimeError("DLQ_URL is not set")
    sqs_client().send_message(
        QueueUrl=url,
        MessageBody=record.body,
        MessageAttributes={
            "reason": {"DataType": "String", "StringValue": reason[:1000]},
            "source_queue": {"DataType": "String", "StringValue": record.event_source_arn or ""},
        },
    )
    metrics.add_metric(name="DeadLettered", unit="Count", value=1)
    logger.error("dead-lettered", extra={"message_id": record.message_id, "reason": reason[:300]})


def guarded(handle: Callable[[Any, SQSRecord], None]) -> Callable[[SQSRecord], None]:
    """Wrap a per-record handler: parse the body; poison → DLQ now; last receive → DLQ with reason."""

    def run(record: SQSRecord) -> None:
        try:
            message = parse_queue_message(record.body)
        except ValidationError as exc:
            dead_letter(record, f"not a leadflow queue message: {exc.errors()[0]['msg']}")
            return
        try:
            handle(message, record)
        except Poison as exc:
            dead_letter(record, str(exc))
        except Exception as exc:
            receives = int(record.attributes.approximate_receive_count or 1)
            if receives >= MAX_RECEIVES:
                dead_letter(record, f"{type(exc).__name__}: {exc}"[:1000])
                return
            logger.warning(
                "record failed, will retry",
                extra={"message_id": record.message_id, "error": type(exc).__name__, "receives": receives},
            )
            raise

    return run


def process_batch(event: dict, context: Any, handle: Callable[[SQSRecord], None]) -> dict:
    response = process_partial_response(
        event=event, record_handler=handle, processor=_processor(), context=context
    )
    return dict(response)
