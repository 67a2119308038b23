"""panel: the owner's pages at /panel/… — numbers, leads, staff, problems, rules (server-rendered) —
and the leads table's stream, which keeps the day-by-day lead facts those numbers are read from
(steps/tally.py)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow import wiring
from leadflow.observability import logger, metrics
from leadflow.steps.tally import is_stream_batch


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    if is_stream_batch(event):
        return wiring.tally_step().handle_event(event, context)
    return wiring.panel_step().handle_event(event, context)
