"""An in-process AWS (moto) with the tables and queues of template.yaml, and the leadflow runtime
pointed at it — the integration fixture every store/handler test uses."""

from __future__ import annotations

import functools
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
from leadflow.adapters.store.config_store import ConfigStore
from leadflow_local.emulator import atomic_moto_writes  # noqa: F401 - the tests' name for the shim
from leadflow_local.functions import invoke
from leadflow_local.stack import create_buckets, create_queues, create_tables
from leadflow_local.streams import StreamReader, streams_client
from leadflow_local.template import load_template

REGION = "eu-central-1"
SALON = Path(__file__).with_name("salon.yaml")  # the business every unit test runs


_readers: dict[str, StreamReader] = {}


@functools.cache
def _stream_sources() -> list[tuple[str, str, int]]:
    """(function, table, batch size) of every DynamoDB stream event source in template.yaml."""
    return [(spec.name, source["table"], source["batch_size"]) for spec in load_template().functions().values()
            for source in spec.stream_sources]  # fmt: skip


def deliver_streams() -> int:
    """Hand every table stream's new records to its function, as Lambda's event source mapping
    would by now (in-process, through the real handler); the number of records delivered."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    streams = streams_client(functools.partial(boto3.client, region_name=REGION))
    total = 0
    for function, table, batch_size in _stream_sources():
        arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        reader = _readers.get(arn)
        if reader is None:
            reader = _readers[arn] = StreamReader(streams, arn, batch_size, functools.partial(invoke, function),
                                                  REGION, table)  # fmt: skip
        total += reader.drain()
    return total


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

    def deliver_streams(self) -> int:
        return deliver_streams()

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
            "CONFIG_TABLE": "ConfigTable", "BOOKINGS_TABLE": "BookingsTable", "STATS_TABLE": "StatsTable",
            "SCORE_QUEUE_URL": urls["ScoreQueue"], "ROUTE_QUEUE_URL": urls["RouteQueue"],
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


@dataclass
class DeployedAws:
    """A stack as `sam deploy` leaves it, in moto: its tables, queues and bucket under generated names."""

    name: str
    outputs: dict[str, str]

    def bucket(self) -> str:
        return self.outputs["MediaBucketName"]

    def table(self, logical_id: str) -> Any:
        return boto3.resource("dynamodb", region_name=REGION).Table(self.outputs[f"{logical_id}Name"])

    def queue_url(self, logical_id: str) -> str:
        return self.outputs[f"{logical_id}Url"]


WEBHOOK_BASE = "https://a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com/webhooks"


def deployable_template() -> dict[str, Any]:
    """template.yaml's tables, queues, bucket, parameters and outputs as a plain CloudFormation template moto
    can create. moto has no SAM transform (so no functions or HTTP API: WebhookBaseUrl becomes a fixed
    URL) and no QueueUrl attribute (a queue's Ref is its URL in CloudFormation as well)."""
    from leadflow_local.template import load_raw

    raw = load_raw()
    kept = {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::S3::Bucket"}
    resources = {k: v for k, v in raw["Resources"].items() if isinstance(v, dict) and v.get("Type") in kept}

    def moto_value(value: Any) -> Any:
        if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "QueueUrl":
            return {"Ref": value["Fn::GetAtt"][0]}
        return value

    outputs = {}
    for key, output in raw["Outputs"].items():
        fixed = {
            "WebhookBaseUrl": WEBHOOK_BASE,
            "PanelUrl": WEBHOOK_BASE.removesuffix("/webhooks") + "/panel",
        }
        value = fixed[key] if key in fixed else moto_value(output["Value"])
        refs = [value["Ref"]] if isinstance(value, dict) and "Ref" in value else []
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            refs = [value["Fn::GetAtt"][0]]
        unknown = [r for r in refs if r not in resources and r not in raw["Parameters"]]
        assert not unknown, f"output {key} names {unknown}: not a table, queue, bucket or parameter"
        outputs[key] = {"Value": value}
    return {"AWSTemplateFormatVersion": "2010-09-09", "Parameters": raw["Parameters"],
            "Resources": resources, "Outputs": outputs}  # fmt: skip


@contextmanager
def deployed_stack(
    name: str = "salon-prod", parameters: dict[str, str] | None = None, config: Path | None = SALON
) -> Iterator[DeployedAws]:
    """moto with a CloudFormation stack made from template.yaml (deployable_template), the business
    config in its ConfigTable. The environment is left as it was found: `--stack` commands set the
    stack's variables in this process, and the next test must not see them."""
    import json

    saved = dict(os.environ)
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(
            StackName=name, TemplateBody=json.dumps(deployable_template()),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
        )  # fmt: skip
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        deployed = DeployedAws(name, {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]})
        if config is not None:
            ConfigStore(deployed.table("ConfigTable")).put(config.read_text(encoding="utf-8"))
        try:
            yield deployed
        finally:
            os.environ.clear()
            os.environ.update(saved)
            wiring.reset()
