"""The local stand-in for Lambda's DynamoDB stream event source: batches in order, a reported
failure retried from that record, and after the last attempt the batch's coordinates sent on."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import boto3

from leadflow_local.streams import MAX_ATTEMPTS, StreamReader, streams_client
from tests.support.aws import REGION
from tests.support.builders import lead


def reader_for(aws, invoke, on_failure=None, batch_size=10) -> StreamReader:
    arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName="LeadsTable")["Table"][
        "LatestStreamArn"
    ]
    streams = streams_client(functools.partial(boto3.client, region_name=REGION))
    return StreamReader(streams, arn, batch_size, invoke, REGION, "LeadsTable", on_failure)


def make_leads(aws, count: int) -> None:
    for n in range(count):
        aws.store.leads.create(lead(f"L{n}", received_at=datetime(2026, 3, 16, 3, n, tzinfo=UTC)))


def test_a_reported_failure_is_retried_from_that_record_then_sent_on(aws):
    make_leads(aws, 4)
    batches: list[list[str]] = []
    failures: list[dict] = []

    def invoke(event: dict) -> dict:
        ids = [r["dynamodb"]["Keys"]["lead_id"]["S"] for r in event["Records"]]
        batches.append(ids)
        bad = [r for r in event["Records"] if r["dynamodb"]["Keys"]["lead_id"]["S"] == "L2"]
        return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in bad]}

    reader = reader_for(aws, invoke, failures.append)
    while reader.poll_once():
        pass
    assert batches[0] == ["L0", "L1", "L2", "L3"]
    assert batches[1:MAX_ATTEMPTS] == [["L2", "L3"]] * (MAX_ATTEMPTS - 1)  # from the failed record on
    assert batches[MAX_ATTEMPTS:] == [["L3"]]  # L2 given up, L3 goes on
    (failure,) = failures
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 2 and "NewImage" not in str(failure)


def test_a_batch_whose_invocation_fails_comes_back_whole(aws):
    make_leads(aws, 2)
    calls: list[int] = []

    def invoke(event: dict) -> dict:
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("the function timed out")
        return {"batchItemFailures": []}

    reader = reader_for(aws, invoke)
    assert reader.drain() == 4  # 2 records, delivered twice
    assert calls == [2, 2] and reader.caught_up


def test_a_short_batch_waits_out_the_batching_window_as_lambda_does(aws):
    """MaximumBatchingWindowInSeconds: records short of a full batch wait for more, so one
    invocation (one write per day of facts) serves many lead changes; a full batch goes at once."""
    import time

    make_leads(aws, 3)
    batches: list[int] = []

    def invoke(event: dict) -> dict:
        batches.append(len(event["Records"]))
        return {"batchItemFailures": []}

    reader = reader_for(aws, invoke, batch_size=10)
    reader.window_s = 0.4
    assert reader.poll_once() == 0 and batches == [] and not reader.caught_up  # waiting, not idle
    for n in (3, 4):
        aws.store.leads.create(lead(f"L{n}", received_at=datetime(2026, 3, 16, 3, n, tzinfo=UTC)))
    time.sleep(0.45)
    assert reader.poll_once() == 5 and batches == [5]  # the window ran out: what came meanwhile too

    full = reader_for(aws, invoke, batch_size=2)
    full.window_s = 60
    full.after = reader.after
    for n in (0, 1):
        aws.store.leads.create(lead(f"M{n}", received_at=datetime(2026, 3, 16, 4, n, tzinfo=UTC)))
    assert full.poll_once() == 2  # a full batch does not wait
    assert reader.drain() == 2  # tests waiting for the stream do not wait either
