"""remind (every 5 minutes): appointment reminders, nudges, nurture, win-back, daily digest."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow import wiring
from leadflow.adapters.platform import aws_shaped
from leadflow.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return wiring.remind_step().handle_event(aws_shaped(event), context)
