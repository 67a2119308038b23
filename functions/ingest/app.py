"""ingest: API Gateway webhooks from every channel → verify, store raw, dedupe, enqueue.

API Gateway routes `/webhooks/{channel}` (and Mango Office's `/webhooks/call/events/{kind}`) here;
the channel comes from the path parameters, so no router is imported: Powertools' event handler
package would add ~40 ms to every cold start of the function that must answer fastest.
"""

from __future__ import annotations

from typing import Any

from leadflow.adapters.channels.base import WebhookRequest
from leadflow.observability import logger, metrics
from leadflow.steps.ingest import default_ingest


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: Any) -> dict:
    answer = default_ingest().handle(WebhookRequest.from_api_gateway(event))
    return {
        "statusCode": answer.status,
        "headers": {"Content-Type": answer.content_type},
        "body": answer.body,
    }
