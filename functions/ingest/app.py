"""ingest: API Gateway webhooks from every channel → verify, store raw, dedupe, enqueue.

API Gateway routes `/webhooks/{channel}` (and Mango Office's `/webhooks/call/events/{kind}`) here;
the channel comes from the path parameters, so no router is imported: Powertools' event handler
package would add ~40 ms to every cold start of the function that must answer fastest.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext

from leadflow import wiring
from leadflow.adapters.platform import aws_shaped
from leadflow.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return wiring.ingest_step().handle_event(aws_shaped(event), context)
