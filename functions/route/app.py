"""route: owner by rules, CRM record, lead card, SLA timer; staff actions, CRM events, SMS reports."""

from __future__ import annotations

from typing import Any

from leadflow.observability import logger, metrics
from leadflow.steps.route_batch import handle_route_batch


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: Any) -> dict:
    return handle_route_batch(event, context)
