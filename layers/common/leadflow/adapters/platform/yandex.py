"""Yandex Cloud: its events in AWS's shapes, and queue retries without partial batch failures.

Shapes, from Yandex Cloud's documentation (samples in ``events/yandex/``):

* API Gateway, ``payload_format_version: "1.0"`` (AWS's REST/HTTP 1.0 format plus ``parameters``,
  ``multiValueParameters``, ``operationId``) → an HTTP API payload 2.0 event, which ingest reads.
* A Message Queue trigger's ``{"messages": [{"event_metadata", "details": {"queue_id", "message":
  {"message_id", "body", "attributes", "message_attributes"}}}]}`` → an SQS event source batch. There
  is no receipt handle and no ``ApproximateReceiveCount``; the records are marked ``EVENT_SOURCE``.
* A timer trigger's ``{"messages": [{"event_metadata", "details": {"trigger_id", "payload"}}]}`` →
  an EventBridge scheduled event (escalate and remind only need the tick).

A Message Queue trigger knows no partial batch failure: a function error returns the whole batch to
the queue, records that succeeded included. So ``settle`` reports every batch as done and sends each
failed record back to its own queue itself, with its attempt counter (``ATTEMPT_ATTRIBUTE``) one
higher and a delay that grows with it; the frame dead-letters the last attempt with its reason as
on AWS. A crash or a timeout still returns the whole batch (the steps are idempotent) without
counting an attempt, so a message sent long ago is taken as possibly redelivered (Bitrix24 then
looks for its earlier write), and the queue's redrive policy ends a message that keeps crashing
the function.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

EVENT_SOURCE = "yandex:message-queue"
ATTEMPT_ATTRIBUTE = "leadflow_attempt"
REGION = "ru-central1"
MAX_DELAY_S = 900  # SendMessage's DelaySeconds: 0-900 (Message Queue API reference)
FIRST_RETRY_DELAY_S = 30
# A first delivery reaches the function within the trigger's batch cutoff (seconds), unless the
# queue is backed up; one this old was most likely returned by a crashed or timed-out invocation.
REDELIVERY_AGE_S = 60


def is_yandex_event(event: Any) -> bool:
    if not isinstance(event, dict):
        return False
    messages = event.get("messages")
    if isinstance(messages, list) and messages and "Records" not in event:
        return all(isinstance(m, dict) and isinstance(m.get("details"), dict) for m in messages)
    return event.get("version") == "1.0" and "httpMethod" in event and "requestContext" in event


def to_aws_shape(event: dict[str, Any]) -> dict[str, Any]:
    if "messages" not in event:
        return http_event(event)
    details = [m["details"] for m in event["messages"]]
    if all("message" in d for d in details):
        return queue_event(event)
    if all("trigger_id" in d for d in details):
        return timer_event(event)
    raise ValueError("a Yandex Cloud trigger event that is neither a queue's nor a timer's")


# --------------------------------------------------------------------------- API Gateway


def http_event(event: dict[str, Any]) -> dict[str, Any]:
    """API Gateway payload 1.0 → HTTP API payload 2.0 (headers lower-cased, repeated values joined
    with commas, cookies apart — as AWS's HTTP API gives them)."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if v is not None}
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if values:
            headers[name.lower()] = ",".join(values)
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    multi_query = {k: list(v) for k, v in (event.get("multiValueQueryStringParameters") or {}).items() if v}
    query = {k: v for k, v in (event.get("queryStringParameters") or {}).items() if v is not None}
    query.update({k: ",".join(v) for k, v in multi_query.items()})
    if not multi_query:
        multi_query = {k: [v] for k, v in query.items()}
    context = event.get("requestContext") or {}
    identity = context.get("identity") or {}
    method = event.get("httpMethod") or context.get("httpMethod") or "GET"
    path = event.get("path") or ""
    epoch = context.get("requestTimeEpoch")
    shaped: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {event.get('resource') or path}",
        "rawPath": path,
        "rawQueryString": urllib.parse.urlencode(multi_query, doseq=True),
        "headers": headers,
        "queryStringParameters": query or None,
        "pathParameters": event.get("pathParameters") or event.get("parameters") or None,
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": identity.get("sourceIp"),
                "userAgent": identity.get("userAgent") or headers.get("user-agent"),
            },
            "requestId": context.get("requestId"),
            "time": context.get("requestTime"),
            "timeEpoch": int(epoch) * 1000 if epoch is not None else None,
            "routeKey": f"{method} {event.get('resource') or path}",
            "stage": "$default",
        },
        "body": event.get("body"),
        "isBase64Encoded": bool(event.get("isBase64Encoded")),
    }
    if cookies:
        shaped["cookies"] = cookies
    return shaped


# --------------------------------------------------------------------------- Message Queue


def queue_event(event: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [_record(m) for m in event["messages"]]}


def _record(message: dict[str, Any]) -> dict[str, Any]:
    details = message["details"]
    body = details["message"]
    attributes = {k: str(v) for k, v in (body.get("attributes") or {}).items()}
    attributes.pop("ApproximateReceiveCount", None)  # not documented for the trigger: never trusted
    return {
        "messageId": body["message_id"],
        "body": body.get("body", ""),
        "attributes": attributes,
        "messageAttributes": {
            name: {"stringValue": value.get("stringValue"), "dataType": _data_type(value)}
            for name, value in (body.get("message_attributes") or {}).items()
            if isinstance(value, dict)
        },
        "md5OfBody": body.get("md5_of_body", ""),
        "eventSource": EVENT_SOURCE,
        "eventSourceARN": details.get("queue_id", ""),
        "awsRegion": REGION,
    }


def _data_type(value: dict[str, Any]) -> str:
    # The trigger's documented sample says "StringValue" where SQS says "String".
    kind = str(value.get("dataType") or "String")
    return "String" if kind == "StringValue" else kind


def attempt(record: dict[str, Any]) -> int:
    """The attempt counter this record carries (1 when it has none: a first send)."""
    value = ((record.get("messageAttributes") or {}).get(ATTEMPT_ATTRIBUTE) or {}).get("stringValue")
    try:
        return max(int(value), 1) if value is not None else 1
    except ValueError:
        return 1


def is_old(record: dict[str, Any], now: float) -> bool:
    """Sent (SentTimestamp, epoch ms) more than REDELIVERY_AGE_S ago."""
    sent = (record.get("attributes") or {}).get("SentTimestamp")
    try:
        return sent is not None and now - int(sent) / 1000 > REDELIVERY_AGE_S
    except ValueError:
        return False


def retry_delay_s(attempt_number: int) -> int:
    """How long a failed record waits before its next attempt: 30 s, doubling, at most 15 minutes."""
    return min(FIRST_RETRY_DELAY_S * 2 ** max(attempt_number - 1, 0), MAX_DELAY_S)


def queue_url_for(queue_id: str, urls: list[str]) -> str | None:
    """The URL of the trigger's queue among ``urls``: the queue's name ends both its id
    (``yrn:yc:ymq:ru-central1:<folder>:<name>``) and its URL (``…/<folder>/<id>/<name>``)."""
    name = queue_id.rsplit(":", 1)[-1]
    matches = [u for u in urls if u and u.rstrip("/").rsplit("/", 1)[-1] == name]
    return matches[0] if len(matches) == 1 else None


def settle(sqs: Any, event: dict[str, Any], response: dict[str, Any], queue_urls: list[str]) -> dict:
    """Send each record the batch reports failed back to its queue, its attempt counter one higher;
    then the batch is done. A send that fails raises: the trigger returns the whole batch."""
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures") or []}
    requeued = 0
    for record in event.get("Records") or []:
        if record["messageId"] not in failed:
            continue
        url = queue_url_for(record.get("eventSourceARN", ""), queue_urls)
        if url is None:
            raise RuntimeError(f"no queue URL for {record.get('eventSourceARN')!r}: cannot retry the record")
        next_attempt = attempt(record) + 1
        attributes = {
            name: {"DataType": value.get("dataType") or "String", "StringValue": value["stringValue"]}
            for name, value in (record.get("messageAttributes") or {}).items()
            if value.get("stringValue") is not None and name != ATTEMPT_ATTRIBUTE
        }
        attributes[ATTEMPT_ATTRIBUTE] = {"DataType": "String", "StringValue": str(next_attempt)}
        sqs.send_message(
            QueueUrl=url,
            MessageBody=record["body"],
            MessageAttributes=attributes,
            DelaySeconds=retry_delay_s(next_attempt - 1),
        )
        requeued += 1
    return {"batchItemFailures": [], "requeued": requeued}


# --------------------------------------------------------------------------- timer


def timer_event(event: dict[str, Any]) -> dict[str, Any]:
    message = event["messages"][0]
    metadata = message.get("event_metadata") or {}
    details = message["details"]
    return {
        "version": "0",
        "id": metadata.get("event_id", ""),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": metadata.get("created_at", ""),
        "region": REGION,
        "resources": [details["trigger_id"]],
        "detail": {"payload": details.get("payload")},
    }
