"""SQS between the functions: versioned pydantic messages, one JSON body each."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, TypeAdapter

from leadflow.domain.models import QueueMessage

_queue_message: TypeAdapter[Any] = TypeAdapter(QueueMessage)


def parse_queue_message(body: str) -> Any:
    """InboundMessage | StaffEvent | CrmEvent | LeadReady; raises ValidationError otherwise."""
    return _queue_message.validate_json(body)


class Queue:
    def __init__(self, sqs: Any, url: str):
        self.sqs = sqs
        self.url = url

    def send(self, message: BaseModel) -> None:
        self.send_json(message.model_dump_json())

    def send_json(self, body: str) -> None:
        """A message already serialised (ingest has sized and stored the same JSON)."""
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body)


@functools.cache
def sqs_client() -> Any:
    import boto3  # AWS_ENDPOINT_URL(_SQS) points it at the local emulator

    return boto3.client("sqs")
