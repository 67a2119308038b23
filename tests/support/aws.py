"""An in-process AWS (moto) with the tables and queues of template.yaml, and the leadflow runtime
pointed at it — the integration fixture every store/handler test uses."""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from leadflow import wiring
from leadflow.adapters.store import Store
from leadflow_local.stack import create_buckets, create_queues, create_tables
from leadflow_local.template import load_template

REGION = "eu-central-1"
SALON = Path(__file__).with_name("salon.yaml")  # the business every unit test runs


@dataclass
class AwsStack:
    queue_urls: dict[str, str]
    env: dict[str, str]

    @property
    def store(self) -> Store:
        return wiring.store()

    def sqs(self) -> Any:
        return boto3.client("sqs", region_name=REGION)

    def receive(self, queue: str, max_messages: int = 10) -> list[dict]:
        """Everything waiting on a queue (removed from it)."""
        sqs, url, found = self.sqs(), self.queue_urls[queue], []
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=max_messages, AttributeNames=["All"],
                                        MessageAttributeNames=["All"]).get("Messages", [])  # fmt: skip
            if not batch:
                return found
            for m in batch:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            found.extend(batch)

    def media_objects(self, prefix: str = "media/") -> dict[str, bytes]:
        """The media bucket's objects under ``prefix``: key → bytes."""
        s3 = boto3.client("s3", region_name=REGION)
        listed = s3.list_objects_v2(Bucket="MediaBucket", Prefix=prefix).get("Contents", [])
        return {o["Key"]: s3.get_object(Bucket="MediaBucket", Key=o["Key"])["Body"].read() for o in listed}

    def push_config(self, yaml_text: str) -> None:
        wiring.store().config.put(yaml_text)


@contextmanager
def aws_stack(config: Path | str | None = SALON) -> Iterator[AwsStack]:
    template = load_template()
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name=REGION), template)
        create_buckets(boto3.client("s3", region_name=REGION), template)
        urls = create_queues(boto3.client("sqs", region_name=REGION), template)
        env = {
            "LEADS_TABLE": "LeadsTable", "CONTACTS_TABLE": "ContactsTable", "CONVERSATION_TABLE": "ConversationTable",
            "STAFF_TABLE": "StaffTable", "TIMERS_TABLE": "TimersTable", "INBOX_TABLE": "InboxTable",
            "CONFIG_TABLE": "ConfigTable", "SCORE_QUEUE_URL": urls["ScoreQueue"], "ROUTE_QUEUE_URL": urls["RouteQueue"],
            "MEDIA_BUCKET": "MediaBucket", "POWERTOOLS_METRICS_DISABLED": "true",
        }  # fmt: skip
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        wiring.reset()
        stack = AwsStack(urls, env)
        if config is not None:
            text = Path(config).read_text(encoding="utf-8") if isinstance(config, Path) else config
            stack.push_config(text)
        try:
            yield stack
        finally:
            wiring.reset()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@contextmanager
def atomic_moto_writes() -> Iterator[None]:
    """moto applies a conditional update as an unlocked read-modify-write, so two threads can both
    pass one condition. DynamoDB writes one item atomically and answers with that write's values:
    one lock per write request, its answer copied under the lock, gives moto that and nothing more
    (tests/unit/routing/test_fairness.py, tests/unit/crm/test_rate_limit.py)."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    originals = {name: getattr(DynamoDBBackend, name) for name in ("update_item", "put_item", "delete_item")}

    def atomic(write):  # type: ignore[no-untyped-def]
        def locked(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            with lock:
                return copy.deepcopy(write(self, *args, **kwargs))

        return locked

    for name, write in originals.items():
        setattr(DynamoDBBackend, name, atomic(write))
    try:
        yield
    finally:
        for name, write in originals.items():
            setattr(DynamoDBBackend, name, write)
