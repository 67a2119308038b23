"""The route function's work on one SQS batch: ready leads first, together (so their CRM push
shares requests), then each record — staff actions, CRM events, delivery reports — on its own."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from leadflow import wiring
from leadflow.adapters.queues import parse_queue_message
from leadflow.adapters.sqs_batch import Poison, guarded, process_batch
from leadflow.domain.models import CrmEvent, DeliveryReport, LeadReady, StaffEvent
from leadflow.steps.crm_sync import apply_crm_event
from leadflow.steps.route import Router
from leadflow.steps.sms_reports import apply_delivery_report
from leadflow.steps.workspace import staff_workspace


class RouteBatch:
    def __init__(self, event: dict):
        self.event = event
        self.failures: dict[str, Exception] = {}  # lead id → why its routing must be retried

    def route_ready_leads(self) -> None:
        ready: list[LeadReady] = []
        redelivered = False
        for record in self.event.get("Records", []):
            try:
                message = parse_queue_message(record["body"])
            except ValueError:
                continue  # the per-record pass dead-letters it with the reason
            if isinstance(message, LeadReady):
                ready.append(message)
                redelivered |= int(record.get("attributes", {}).get("ApproximateReceiveCount", "1")) > 1
        if ready:
            router = Router(wiring.store(), wiring.outbound(), wiring.crm(), wiring.business())
            self.failures = router.route(ready, redelivered)

    def handle(self, message: Any, record: SQSRecord) -> None:
        if isinstance(message, LeadReady):
            if message.lead_id in self.failures:
                raise self.failures[message.lead_id]  # Poison → DLQ now; anything else → retried
            return
        if isinstance(message, StaffEvent):
            staff_workspace().handle(message)
        elif isinstance(message, CrmEvent):
            apply_crm_event(message)
        elif isinstance(message, DeliveryReport):
            apply_delivery_report(wiring.store(), wiring.outbound(), wiring.business(), message)
        else:
            raise Poison(f"route does not take {message.type!r}")
        wiring.store().inbox.mark_done(message.event_id)


def handle_route_batch(event: dict, context: Any) -> dict:
    batch = RouteBatch(event)
    batch.route_ready_leads()
    return process_batch(event, context, guarded(batch.handle))
