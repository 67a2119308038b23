"""ingest: API Gateway webhooks from every channel → verify, store raw, dedupe, enqueue."""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver, Response

from leadflow.channels.base import WebhookRequest
from leadflow.ingest import default_ingest
from leadflow.observability import logger, metrics

app = APIGatewayHttpResolver()


@app.route("/webhooks/<channel>", method=["GET", "POST"])
def webhook(channel: str) -> Response:
    return _handle(channel, {})


@app.route("/webhooks/call/events/<kind>", method=["POST"])
def mango_event(kind: str) -> Response:
    """Mango Office appends /events/call, /events/summary, … to the URL it is given."""
    return _handle("call", {"provider": f"mango/events/{kind}"})


def _handle(channel: str, extra_query: dict[str, str]) -> Response:
    event = app.current_event
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    request = WebhookRequest(
        method=event.request_context.http.method,
        channel=channel,
        headers={k.lower(): v for k, v in (event.headers or {}).items()},
        query={**(event.query_string_parameters or {}), **extra_query},
        body=body,
        source_ip=event.request_context.http.source_ip,
    )
    answer = default_ingest().handle(request)
    return Response(status_code=answer.status, content_type=answer.content_type, body=answer.body)


@app.not_found
def not_found(_: Exception) -> Response:
    return Response(status_code=404, content_type="text/plain", body="not found")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict, context: Any) -> dict:
    return app.resolve(event, context)
