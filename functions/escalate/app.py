"""escalate (every minute): SLA ladders and leads that waited long enough to be routed."""

from __future__ import annotations

from typing import Any

from leadflow import clock, wiring
from leadflow.observability import logger, metrics
from leadflow.steps.escalate import Escalator
from leadflow.steps.route import Router


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: Any) -> dict:
    store, outbound, crm, business = wiring.store(), wiring.outbound(), wiring.crm(), wiring.business()
    router = Router(store, outbound, crm, business)
    worked = Escalator(store, outbound, crm, business, wiring.route_queue(), router.reassign).run(clock.now())
    return {"timers": worked}
