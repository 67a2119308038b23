"""route: owner by rules, CRM record, lead card, SLA timer; staff actions and CRM events."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from leadflow import runtime
from leadflow.crm.sync import apply_crm_event
from leadflow.models import CrmEvent, DeliveryReport, LeadReady, StaffEvent
from leadflow.observability import logger, metrics
from leadflow.queues import parse_queue_message
from leadflow.routing.router import Router
from leadflow.sms_reports import apply_delivery_report
from leadflow.sqs_batch import Poison, guarded, process_batch
from leadflow.workspace import staff_workspace

_failures: dict[str, Exception] = {}


def _route_ready_leads(event: dict) -> None:
    """One pass over the batch's LeadReady records first, so their CRM push shares requests."""
    ready = []
    redelivered = False
    for record in event.get("Records", []):
        try:
            message = parse_queue_message(record["body"])
        except ValueError:
            continue  # the per-record pass dead-letters it with the reason
        if isinstance(message, LeadReady):
            ready.append(message)
            redelivered |= int(record.get("attributes", {}).get("ApproximateReceiveCount", "1")) > 1
    _failures.clear()
    if ready:
        router = Router(runtime.store(), runtime.outbound(), runtime.crm(), runtime.business())
        _failures.update(router.route(ready, redelivered))


def _handle(message: Any, record: SQSRecord) -> None:
    if isinstance(message, LeadReady):
        if message.lead_id in _failures:
            raise _failures[message.lead_id]  # Poison → DLQ now; anything else → retried
    elif isinstance(message, StaffEvent):
        staff_workspace().handle(message)
        runtime.store().inbox.mark_done(message.event_id)
    elif isinstance(message, CrmEvent):
        apply_crm_event(message)
        runtime.store().inbox.mark_done(message.event_id)
    elif isinstance(message, DeliveryReport):
        apply_delivery_report(runtime.store(), runtime.outbound(), runtime.business(), message)
        runtime.store().inbox.mark_done(message.event_id)
    else:
        raise Poison(f"route does not take {message.type!r}")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: Any) -> dict:
    _route_ready_leads(event)
    return process_batch(event, context, guarded(_handle))
