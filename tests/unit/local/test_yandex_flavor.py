"""`leadflow up --flavor yandex` plays Yandex Cloud: the gateway hands ingest payload 1.0, the
pollers hand Message Queue trigger batches (no receive count, no receipt handle), the scheduler
timer ticks — each of which the platform shim reads as the same thing the aws flavour delivers."""

from __future__ import annotations

import pytest

from leadflow.adapters import platform
from leadflow.adapters.channels.base import WebhookRequest
from leadflow_local.cli import build_parser
from leadflow_local.stack import (
    LocalStack,
    api_gateway_event,
    sqs_event,
    yandex_gateway_event,
    yandex_timer_event,
    ymq_trigger_event,
)


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [("POST", "/webhooks/form", "secret=s&branch=khimki"), ("POST", "/webhooks/call/events/summary", ""),
     ("GET", "/webhooks/whatsapp", "hub.mode=subscribe&hub.challenge=7")],
)  # fmt: skip
def test_the_gateway_request_reads_the_same_in_both_flavours(method, path, query):
    args = (
        method,
        path,
        query,
        {"Content-Type": "application/json", "X-Form-Secret": "s"},
        b'{"a": 1}',
        "10.0.0.1",
    )
    yandex_event = yandex_gateway_event(*args)
    assert yandex_event["version"] == "1.0" and platform.platform_of(yandex_event) == "yandex"
    mine = WebhookRequest.from_api_gateway(platform.aws_shaped(yandex_event))
    theirs = WebhookRequest.from_api_gateway(api_gateway_event(*args))
    assert (mine.method, mine.channel, mine.query, mine.body, mine.source_ip, mine.headers) == (
        theirs.method, theirs.channel, theirs.query, theirs.body, theirs.source_ip, theirs.headers,
    )  # fmt: skip


def test_a_trigger_batch_carries_no_receive_count_and_no_receipt_handle():
    messages = [{"MessageId": "m-1", "ReceiptHandle": "rh", "Body": '{"type": "lead_ready"}', "MD5OfBody": "x",
                 "Attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1773460800000"},
                 "MessageAttributes": {"leadflow_attempt": {"StringValue": "2", "DataType": "String"}}}]  # fmt: skip
    (record,) = platform.aws_shaped(ymq_trigger_event(messages, "RouteQueue"))["Records"]
    (aws,) = sqs_event(messages, "RouteQueue")["Records"]
    assert (record["messageId"], record["body"]) == (aws["messageId"], aws["body"])
    assert "receiptHandle" not in record and "ApproximateReceiveCount" not in record["attributes"]
    assert platform.attempt(record) == 2 and record["eventSourceARN"].endswith(":RouteQueue")


def test_a_timer_tick_is_yandex_shaped():
    tick = yandex_timer_event("escalate")
    assert platform.platform_of(tick) == "yandex"
    assert platform.aws_shaped(tick)["detail-type"] == "Scheduled Event"


def test_the_flavour_is_an_option_of_up_and_nothing_else_is_taken():
    assert build_parser().parse_args(["up", "--flavor", "yandex"]).flavor == "yandex"
    assert build_parser().parse_args(["up"]).flavor == "aws"
    with pytest.raises(ValueError, match="flavor must be one of aws, yandex"):
        LocalStack(flavor="gcp")
