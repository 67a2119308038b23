"""escalate (every minute): SLA ladders and leads that waited long enough to be routed."""

from __future__ import annotations

from typing import Any

from leadflow import clock, runtime
from leadflow.observability import logger, metrics
from leadflow.routing.router import Router
from leadflow.sla import Escalator


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: Any) -> dict:
    store, outbound, crm, business = runtime.store(), runtime.outbound(), runtime.crm(), runtime.business()
    router = Router(store, outbound, crm, business)
    worked = Escalator(store, outbound, crm, business, runtime.route_queue(), router.reassign).run(
        clock.now()
    )
    return {"timers": worked}
