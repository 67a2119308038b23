"""The route batch template.yaml asks SQS for is one the Bitrix24 client can push in two requests,
and the local stack delivers batches of that size as Lambda would."""

from __future__ import annotations

import threading

import boto3

from leadflow.adapters.crm.bitrix24 import MAX_BATCH_COMMANDS
from leadflow_local.stack import Poller
from leadflow_local.template import load_template

# A lead's write commands, worst case in classic mode: the add (or the comment on its duplicate)
# and its call-back task. Simple mode adds a contact for a new client (BITRIX24.md).
CLASSIC_WRITE_COMMANDS_PER_LEAD = 2


def route_source() -> dict:
    [source] = load_template().functions()["route"].sqs_sources
    return source


def test_a_full_route_batch_fits_one_write_batch_in_classic_mode_whatever_the_leads():
    assert route_source()["batch_size"] * CLASSIC_WRITE_COMMANDS_PER_LEAD <= MAX_BATCH_COMMANDS


def test_more_than_ten_records_come_with_a_batching_window_as_sqs_requires():
    source = route_source()
    assert source["batch_size"] > 10  # a route batch spreads the lookup over more than 10 leads
    assert source["window_s"] >= 1  # Lambda takes BatchSize > 10 only with a batching window


def test_the_local_poller_hands_over_a_batch_larger_than_one_receive(aws):
    sqs = boto3.client("sqs", region_name="eu-central-1")
    url = sqs.create_queue(QueueName="route-batch-size")["QueueUrl"]
    batch_size = route_source()["batch_size"]
    for n in range(batch_size + 3):
        sqs.send_message(QueueUrl=url, MessageBody=f'{{"n": {n}}}')
    batches: list[int] = []
    poller = Poller(
        sqs,
        "RouteQueue",
        url,
        batch_size,
        lambda event: batches.append(len(event["Records"])),
        threading.Event(),
    )

    poller.poll_once()
    poller.poll_once()

    assert batches == [batch_size, 3]
