"""SQS consumers' common frame: the Powertools batch utility with partial failures, and a
dead-letter hand-off that keeps the reason.

A record that fails is retried by SQS (batchItemFailures). On its last allowed receive — or at
once when it can never succeed (a message we do not understand) — it is moved to the DLQ by us,
with the reason as a message attribute, so `leadflow dlq` can show why and redrive it.

On Yandex Cloud (records from ``adapters/platform/yandex.py``) there is no partial batch failure and
no receive count: a failed record is sent back to its queue with an attempt counter, the batch is
reported done, and the counter is what "which delivery is this" reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from leadflow.adapters import platform
from leadflow.adapters.platform import yandex
from leadflow.adapters.queues import parse_queue_message
from leadflow.observability import logger, metrics

RecordHandler = Callable[[Any, SQSRecord], None]


class Poison(Exception):
    """A message that no retry can fix (unknown shape or version)."""


class BatchFrame:
    """Runs a handler over each record of a batch; dead-letters what cannot or can no longer succeed."""

    def __init__(self, sqs: Any, dlq_url: str | None, max_receives: int, queue_urls: list[str] | None = None):
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.max_receives = max_receives
        self.queue_urls = [u for u in queue_urls or [] if u]  # where a Yandex retry goes back to

    def attempt(self, record: dict | SQSRecord) -> int:
        """Which delivery of the record this is (1 = the first): SQS's receive count on AWS, the
        attempt counter the record carries on Yandex Cloud."""
        return platform.attempt(record if isinstance(record, dict) else record.raw_event)

    def may_be_redelivered(self, record: dict | SQSRecord) -> bool:
        """An earlier delivery may have done part of the work (see platform.may_be_redelivered)."""
        return platform.may_be_redelivered(record if isinstance(record, dict) else record.raw_event)

    def process(self, event: dict, context: Any, handle: RecordHandler) -> dict:
        # One processor per batch: it keeps the batch's records and outcomes on itself. All records
        # failing is reported like any partial failure: SQS retries exactly those.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response = process_partial_response(
            event=event, record_handler=self._guarded(handle), processor=processor, context=context
        )
        if platform.is_yandex_batch(event):
            return yandex.settle(self.sqs, event, dict(response), self.queue_urls)
        return dict(response)

    def dead_letter(self, record: SQSRecord, reason: str) -> None:
        if not self.dlq_url:
            raise RuntimeError("DLQ_URL is not set")
        self.sqs.send_message(
            QueueUrl=self.dlq_url,
            MessageBody=record.body,
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason[:1000]},
                "source_queue": {"DataType": "String", "StringValue": record.event_source_arn or ""},
            },
        )
        metrics.add_metric(name="DeadLettered", unit="Count", value=1)
        logger.error("dead-lettered", extra={"message_id": record.message_id, "reason": reason[:300]})

    def _guarded(self, handle: RecordHandler) -> Callable[[SQSRecord], None]:
        """Parse the body; poison → DLQ now; the last allowed receive → DLQ with the reason."""

        def run(record: SQSRecord) -> None:
            try:
                message = parse_queue_message(record.body)
            except ValidationError as exc:
                self.dead_letter(record, f"not a leadflow queue message: {exc.errors()[0]['msg']}")
                return
            try:
                handle(message, record)
            except Poison as exc:
                self.dead_letter(record, str(exc))
            except Exception as exc:
                receives = self.attempt(record)
                if receives >= self.max_receives:
                    self.dead_letter(record, f"{type(exc).__name__}: {exc}"[:1000])
                    return
                logger.warning(
                    "record failed, will retry",
                    extra={
                        "message_id": record.message_id,
                        "error": type(exc).__name__,
                        "receives": receives,
                    },
                )
                raise

        return run
