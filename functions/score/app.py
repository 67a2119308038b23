"""score: understand each client message, answer at once, hand ready leads to route."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from leadflow import wiring
from leadflow.adapters.sqs_batch import Poison, guarded, process_batch
from leadflow.domain.models import InboundMessage
from leadflow.observability import logger, metrics
from leadflow.steps.score import Conversation


def _handle(message: Any, record: SQSRecord) -> None:
    if not isinstance(message, InboundMessage):
        raise Poison(f"score takes inbound messages, got {message.type!r}")
    conversation = Conversation(
        wiring.store(), wiring.outbound(), wiring.route_queue(), wiring.business(), wiring.qualifier()
    )
    conversation.handle(message)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: Any) -> dict:
    return process_batch(event, context, guarded(_handle))
