"""Lambda's DynamoDB stream event source mapping, locally: read a table's stream from its start,
hand Lambda-shaped batches to the function, and move on only past what succeeded.

A batch whose invocation reports ``batchItemFailures`` is retried from the first failed record
(ReportBatchItemFailures); one whose invocation fails is retried whole. After MAX_ATTEMPTS the
failing record (or batch) is skipped with a line on stderr — Lambda would hand its coordinates to
the on-failure destination (``on_failure``: Lambda's record of where in the stream the batch was).
moto's stream has one shard per table, as a small table's stream does.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

MAX_ATTEMPTS = 3
IDLE_WAIT_S = 0.2  # Lambda polls a shard four times a second


def streams_client(client: Callable[..., Any], **config: Any) -> Any:
    """botocore names a stream's endpoint after the account (<account>.streams-ddb…); moto answers
    the regional name only."""
    from botocore.config import Config

    return client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled", **config))


def stream_event(records: list[dict], stream_arn: str, region: str) -> dict:
    """GetRecords' records as Lambda delivers them (ApproximateCreationDateTime in epoch seconds)."""
    shaped = []
    for record in records:
        data = dict(record["dynamodb"])
        created = data.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            data["ApproximateCreationDateTime"] = int(created.timestamp())
        shaped.append({
            "eventID": record.get("eventID"), "eventName": record["eventName"], "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": region, "dynamodb": data, "eventSourceARN": stream_arn,
        })  # fmt: skip
    return {"Records": shaped}


class StreamReader:
    def __init__(self, streams: Any, stream_arn: str, batch_size: int, invoke: Callable[[dict], Any],
                 region: str, name: str = "stream", on_failure: Callable[[dict], Any] | None = None,
                 window_s: float = 0.0):  # fmt: skip
        self.streams, self.stream_arn, self.batch_size, self.invoke = streams, stream_arn, batch_size, invoke
        self.on_failure = on_failure
        self.shard_id = ""
        self.region, self.name = region, name
        self.after: str | None = None  # the last sequence number done
        self.attempts = 0
        self.caught_up = False
        self.delivered = 0  # records handed to the function (retries counted again)
        # As Lambda's MaximumBatchingWindowInSeconds: a batch short of batch_size waits this long
        # for more records (one write per day of facts serves the whole batch).
        self.window_s = window_s
        self._waiting_since: float | None = None
        self._lock = threading.Lock()

    def _records(self) -> list[dict]:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        if not shards:
            return []
        self.shard_id = shards[0]["ShardId"]
        kwargs: dict = {"StreamArn": self.stream_arn, "ShardId": self.shard_id}
        if self.after is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=self.after)
        iterator = self.streams.get_shard_iterator(**kwargs)["ShardIterator"]
        return list(self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)["Records"])

    def poll_once(self, *, now: bool = False) -> int:
        """Deliver at most one batch; the number of records handed over (0: caught up, or a short
        batch waiting out the batching window). ``now``: no window (tests waiting for the stream)."""
        with self._lock:
            records = self._records()
            if not records:
                self.caught_up, self._waiting_since = True, None
                return 0
            self.caught_up = False
            if not now and len(records) < self.batch_size and self.window_s:
                self._waiting_since = self._waiting_since or time.monotonic()
                if time.monotonic() - self._waiting_since < self.window_s:
                    return 0
            self._waiting_since = None
            self.delivered += len(records)
            sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
            try:
                result = self.invoke(stream_event(records, self.stream_arn, self.region)) or {}
                failures = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
            except Exception as exc:
                failures = [sequences[0]]
                print(f"leadflow up: {self.name} stream batch failed: {type(exc).__name__}: {exc}",
                      file=sys.stderr, flush=True)  # fmt: skip
            if not failures:
                self.after, self.attempts = sequences[-1], 0
                return len(records)
            first = min((f for f in failures if f in sequences), key=sequences.index, default=sequences[0])
            at = sequences.index(first)
            if at:  # what came before the failure is done
                self.after, self.attempts = sequences[at - 1], 0
            self.attempts += 1
            if self.attempts >= MAX_ATTEMPTS:
                print(f"leadflow up: {self.name} stream record {first} skipped after {MAX_ATTEMPTS} attempts",
                      file=sys.stderr, flush=True)  # fmt: skip
                if self.on_failure:
                    self.on_failure(self._failure_record(records[at:], MAX_ATTEMPTS))
                self.after, self.attempts = first, 0
            return len(records)

    def _failure_record(self, records: list[dict], attempts: int) -> dict:
        """What Lambda sends an on-failure destination for a stream batch: where it was, not the data."""
        return {
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts},
            "DDBStreamBatchInfo": {
                "shardId": self.shard_id, "streamArn": self.stream_arn, "batchSize": len(records),
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            },
            "timestamp": datetime.now(UTC).isoformat(), "version": "1.0",
        }  # fmt: skip

    def drain(self, max_batches: int = 100_000) -> int:
        """Deliver until caught up (the tests' way to wait for the stream); records handed over."""
        total = 0
        for _ in range(max_batches):
            done = self.poll_once(now=True)
            if not done:
                return total
            total += done
        return total


class StreamPoller(threading.Thread):
    def __init__(self, reader: StreamReader, stop: threading.Event):
        super().__init__(daemon=True, name=f"poller-stream-{reader.name}")
        self.reader, self.stopping = reader, stop

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                if not self.reader.poll_once():
                    self.stopping.wait(IDLE_WAIT_S)
            except Exception as exc:  # the emulator going away at shutdown
                if not self.stopping.is_set():
                    print(
                        f"leadflow up: {self.reader.name} stream poller: {type(exc).__name__}: {exc}",
                        flush=True,
                    )
                    self.stopping.wait(0.5)
