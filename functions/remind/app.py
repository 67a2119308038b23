"""remind (every 5 minutes): appointment reminders, nudges, nurture, win-back, daily digest."""

from __future__ import annotations

from typing import Any

from leadflow import clock, runtime
from leadflow.observability import logger, metrics
from leadflow.reminders import Reminders


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: Any) -> dict:
    worked = Reminders(runtime.store(), runtime.outbound(), runtime.crm(), runtime.business()).run(
        clock.now()
    )
    return {"timers": worked}
