"""An in-process AWS (moto) with the tables and queues of template.yaml, and the leadflow runtime
pointed at it — the integration fixture every store/handler test uses."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from leadflow import wiring
from leadflow.adapters.store import Store
from leadflow_local.emulator import atomic_moto_writes  # noqa: F401 - the tests' name for the shim
from leadflow_local.stack import EXAMPLE_CONFIG, create_queues, create_tables
from leadflow_local.template import load_template

REGION = "eu-central-1"


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

    def push_config(self, yaml_text: str) -> None:
        wiring.store().config.put(yaml_text)


@contextmanager
def aws_stack(config: Path | str | None = EXAMPLE_CONFIG) -> Iterator[AwsStack]:
    template = load_template()
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name=REGION), template)
        urls = create_queues(boto3.client("sqs", region_name=REGION), template)
        env = {
            "LEADS_TABLE": "LeadsTable", "CONTACTS_TABLE": "ContactsTable", "CONVERSATION_TABLE": "ConversationTable",
            "STAFF_TABLE": "StaffTable", "TIMERS_TABLE": "TimersTable", "INBOX_TABLE": "InboxTable",
            "CONFIG_TABLE": "ConfigTable", "SCORE_QUEUE_URL": urls["ScoreQueue"], "ROUTE_QUEUE_URL": urls["RouteQueue"],
            "POWERTOOLS_METRICS_DISABLED": "true",
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
