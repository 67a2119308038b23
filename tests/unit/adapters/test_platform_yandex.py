"""The Yandex Cloud shims are pure translations: what ingest and the batch frame read comes out of
each documented Yandex event, and an AWS event passes untouched."""

from __future__ import annotations

import base64
import json

import pytest

from leadflow.adapters import platform
from leadflow.adapters.channels.base import WebhookRequest
from leadflow.adapters.platform import yandex
from tests.support.webhooks import EVENTS


def sample(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "name", ["form/site_json.json", "score/inbound_message.json", "escalate/scheduled.json"]
)
def test_aws_events_pass_untouched(name):
    event = sample(name)
    assert platform.platform_of(event) == "aws"
    assert platform.aws_shaped(event) is event


def test_api_gateway_1_0_reads_as_the_same_request_as_its_aws_twin():
    yc = WebhookRequest.from_api_gateway(platform.aws_shaped(sample("yandex/ingest_form.json")))
    aws = WebhookRequest.from_api_gateway(sample("form/site_json.json"))
    assert (yc.method, yc.channel, yc.body, yc.source_ip) == (
        aws.method,
        aws.channel,
        aws.body,
        aws.source_ip,
    )
    assert yc.header("x-form-secret") == "dev-form-secret"


def test_repeated_headers_and_query_values_are_joined_and_cookies_kept_apart():
    event = sample("yandex/ingest_whatsapp_verify.json")
    event["multiValueHeaders"]["X-Tag"] = ["a", "b"]
    event["multiValueHeaders"]["Cookie"] = ["session=abc; lang=ru"]
    event["multiValueQueryStringParameters"]["tag"] = ["x", "y"]
    shaped = yandex.http_event(event)
    assert shaped["headers"]["x-tag"] == "a,b" and "cookie" not in shaped["headers"]
    assert shaped["cookies"] == ["session=abc", "lang=ru"]
    assert shaped["queryStringParameters"]["tag"] == "x,y"
    assert "tag=x&tag=y" in shaped["rawQueryString"]
    assert shaped["requestContext"]["timeEpoch"] == 1773460800000


def test_a_base64_body_and_mangos_event_path_arrive_as_ingest_expects():
    event = sample("yandex/ingest_form.json")
    event.update(
        resource="/webhooks/call/events/{kind}", path="/webhooks/call/events/summary",
        pathParameters={"kind": "summary"}, body=base64.b64encode(b"vpbx_api_key=k&sign=s").decode(),
        isBase64Encoded=True,
    )  # fmt: skip
    request = WebhookRequest.from_api_gateway(platform.aws_shaped(event))
    assert request.channel == "call" and request.query["provider"] == "mango/events/summary"
    assert request.body == b"vpbx_api_key=k&sign=s"


def test_a_queue_trigger_message_becomes_an_sqs_record_without_a_receive_count():
    event = sample("yandex/score_inbound_message.json")
    event["messages"][0]["details"]["message"]["attributes"]["ApproximateReceiveCount"] = "7"
    (record,) = platform.aws_shaped(event)["Records"]
    message = event["messages"][0]["details"]["message"]
    assert record["messageId"] == message["message_id"] and record["body"] == message["body"]
    assert record["eventSourceARN"] == event["messages"][0]["details"]["queue_id"]
    assert "ApproximateReceiveCount" not in record["attributes"]
    assert record["attributes"]["SentTimestamp"] == "1773460800000"
    assert platform.attempt(record) == 1


@pytest.mark.parametrize(("value", "expected"), [("3", 3), ("0", 1), ("junk", 1), (None, 1)])
def test_the_attempt_counter_is_read_from_the_message_attribute(value, expected):
    event = sample("yandex/route_lead_ready.json")
    if value is not None:
        event["messages"][0]["details"]["message"]["message_attributes"] = {
            yandex.ATTEMPT_ATTRIBUTE: {"dataType": "StringValue", "stringValue": value}
        }
    (record,) = yandex.queue_event(event)["Records"]
    assert platform.attempt(record) == expected


@pytest.mark.parametrize(
    ("attempt", "age_s", "expected"),
    [(None, 2, False), (2, 2, True), (None, 6 * 60, True), (None, 59, False)],
)
def test_a_record_may_be_redelivered_when_counted_again_or_sent_long_ago(attempt, age_s, expected):
    event = sample("yandex/route_lead_ready.json")
    message = event["messages"][0]["details"]["message"]
    now = int(message["attributes"]["SentTimestamp"]) / 1000 + age_s
    if attempt is not None:
        message["message_attributes"] = {
            yandex.ATTEMPT_ATTRIBUTE: {"dataType": "String", "stringValue": str(attempt)}
        }
    (record,) = yandex.queue_event(event)["Records"]
    assert platform.may_be_redelivered(record, now) is expected


def test_an_aws_record_is_a_redelivery_by_its_receive_count_alone():
    (record,) = sample("score/inbound_message.json")["Records"]
    assert not platform.may_be_redelivered(record, now=10**12)  # old, but SQS counts
    record["attributes"]["ApproximateReceiveCount"] = "2"
    assert platform.may_be_redelivered(record)


def test_an_aws_record_still_counts_its_receives():
    (record,) = sample("score/inbound_message.json")["Records"]
    record["attributes"]["ApproximateReceiveCount"] = "4"
    assert platform.attempt(record) == 4


def test_the_queue_url_is_found_by_the_name_that_ends_both():
    urls = [
        "https://message-queue.api.cloud.yandex.net/b1g8ad42m6he1ooql78r/dj600000000000le07ol/leadflow-salon-score",
        "https://message-queue.api.cloud.yandex.net/b1g8ad42m6he1ooql78r/dj600000000000le07om/leadflow-salon-route",
    ]
    assert (
        yandex.queue_url_for("yrn:yc:ymq:ru-central1:b1g8ad42m6he1ooql78r:leadflow-salon-route", urls)
        == urls[1]
    )
    assert yandex.queue_url_for("yrn:yc:ymq:ru-central1:b1g8ad42m6he1ooql78r:other", urls) is None


def test_a_timer_tick_becomes_a_scheduled_event():
    shaped = platform.aws_shaped(sample("yandex/escalate_timer.json"))
    assert shaped["detail-type"] == "Scheduled Event"
    assert shaped["resources"] == ["a1sfe084v4se********"] and shaped["detail"] == {"payload": "escalate"}


def test_a_trigger_event_of_another_kind_is_refused_clearly():
    with pytest.raises(ValueError, match="neither a queue's nor a timer's"):
        platform.aws_shaped({"messages": [{"details": {"bucket_id": "b", "object_id": "o"}}]})
