"""score: understand each client message, answer at once, hand ready leads to route."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from leadflow import runtime
from leadflow.conversation import Conversation
from leadflow.models import InboundMessage
from leadflow.observability import logger, metrics
from leadflow.sqs_batch import Poison, guarded, process_batch


def _handle(message: Any, record: SQSRecord) -> None:
    if not isinstance(message, InboundMessage):
        raise Poison(f"score takes inbound messages, got {message.type!r}")
    conversation = Conversation(
        runtime.store(), runtime.outbound(), runtime.route_queue(), runtime.business(), runtime.qualifier()
    )
    conversation.handle(message)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: Any) -> dict:
    return process_batch(event, context, guarded(_handle))
