"""panel: the owner's pages at /panel/… — numbers, leads, staff, problems, rules (server-rendered) —
and the leads table's stream, which keeps the day-by-day lead facts those numbers are read from
(steps/tally.py)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow import wiring
from leadflow.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return wiring.panel_handler(event)(event, context)
