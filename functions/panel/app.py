"""panel: the owner's pages at /panel/… — numbers, leads, staff, problems, rules (server-rendered)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow import wiring
from leadflow.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return wiring.panel_step().handle_event(event, context)
