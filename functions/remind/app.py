"""remind (every 5 minutes): appointment reminders, nudges, nurture, win-back, daily digest."""

from __future__ import annotations

from typing import Any

from leadflow import clock, wiring
from leadflow.observability import logger, metrics
from leadflow.steps.remind import Reminders


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: Any) -> dict:
    worked = Reminders(wiring.store(), wiring.outbound(), wiring.crm(), wiring.business()).run(clock.now())
    return {"timers": worked}
