"""Run once against a real Yandex Cloud folder: which undocumented points hold there.

leadflow relies only on what Yandex Cloud documents (README "Deploying to Yandex Cloud"); this
script checks the rest on a scratch table and a scratch queue, prints what holds, and removes them:

* Document API: a conditional write with ``IN``; arithmetic in ``SET n = n + :one``; ``ADD`` under a
  condition; ``ReturnValuesOnConditionCheckFailure``; a query on a global secondary index (``ALL``)
  and whether ``KEYS_ONLY`` is refused; TTL (enabled, and an expired item still readable).
* Message Queue with the boto3 in this environment (its SQS protocol is printed): send with message
  attributes and a delay, receive them back with the system attributes, delete.

    AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… python deploy/yandex/smoke.py \\
        --endpoint https://docapi.serverless.yandexcloud.net/ru-central1/<cloud>/<database>

Run it with the boto3 the functions carry (`PYTHONPATH=build/yandex/.deps/common`) and with the
current one: if both pass the queue checks, the pin in deploy/yandex/requirements.txt can go.
Exit status 0 when every check ran (whatever it found), 1 when the script could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

YMQ_ENDPOINT = "https://message-queue.api.cloud.yandex.net"
REGION = "ru-central1"

Check = Callable[[], tuple[bool | None, str]]


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or type(exc).__name__)


class DocumentApi:
    def __init__(self, client: Any, table: str):
        self.client = client
        self.table = table
        self.key = {"pk": {"S": "smoke"}}

    def create(self) -> None:
        self.client.create_table(
            TableName=self.table,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "day", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_day",
                    "KeySchema": [{"AttributeName": "day", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        self._wait_active(self.table)

    def _wait_active(self, table: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.client.describe_table(TableName=table)["Table"].get("TableStatus") == "ACTIVE":
                return
            time.sleep(2)
        raise TimeoutError(f"table {table} not ACTIVE after {timeout_s:.0f}s")

    def drop(self) -> None:
        self.client.delete_table(TableName=self.table)

    def conditional_in(self) -> tuple[bool | None, str]:
        self.client.put_item(TableName=self.table, Item={**self.key, "status": {"S": "received"}})
        self.client.put_item(
            TableName=self.table,
            Item={**self.key, "status": {"S": "queued"}},
            ConditionExpression="attribute_not_exists(pk) OR #s IN (:failed, :received)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":failed": {"S": "failed"}, ":received": {"S": "received"}},
        )
        try:
            self.client.put_item(
                TableName=self.table,
                Item={**self.key, "status": {"S": "again"}},
                ConditionExpression="#s IN (:failed, :received)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":failed": {"S": "failed"}, ":received": {"S": "received"}},
            )
        except Exception as exc:
            return _error_code(
                exc
            ) == "ConditionalCheckFailedException", f"second write refused: {_error_code(exc)}"
        return False, "a write whose IN condition is false went through"

    def set_arithmetic(self) -> tuple[bool | None, str]:
        self.client.put_item(TableName=self.table, Item={**self.key, "n": {"N": "1"}})
        try:
            answer = self.client.update_item(
                TableName=self.table, Key=self.key, UpdateExpression="SET n = n + :one",
                ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW",
            )  # fmt: skip
        except Exception as exc:
            return False, f"refused: {_error_code(exc)}"
        value = answer.get("Attributes", {}).get("n", {}).get("N")
        return value == "2", f"n = {value}"

    def conditional_add(self) -> tuple[bool | None, str]:
        self.client.put_item(TableName=self.table, Item={**self.key, "tat": {"N": "10.5"}})
        answer = self.client.update_item(
            TableName=self.table, Key=self.key, UpdateExpression="ADD tat :i",
            ConditionExpression="tat >= :now AND tat < :limit",
            ExpressionAttributeValues={":i": {"N": "0.5"}, ":now": {"N": "10"}, ":limit": {"N": "20"}},
            ReturnValues="UPDATED_NEW",
        )  # fmt: skip
        value = answer.get("Attributes", {}).get("tat", {}).get("N")
        return value is not None and float(value) == 11.0, f"tat = {value}"

    def return_values_on_conflict(self) -> tuple[bool | None, str]:
        self.client.put_item(TableName=self.table, Item={**self.key, "tat": {"N": "42"}})
        try:
            self.client.update_item(
                TableName=self.table, Key=self.key, UpdateExpression="SET tat = :v",
                ConditionExpression="tat < :v", ExpressionAttributeValues={":v": {"N": "1"}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )  # fmt: skip
        except Exception as exc:
            item = (getattr(exc, "response", None) or {}).get("Item")
            if _error_code(exc) != "ConditionalCheckFailedException":
                return False, f"refused: {_error_code(exc)}"
            return bool(item), "the conflict carries the item" if item else "the conflict carries no item"
        return False, "the condition did not fail"

    def gsi_query(self) -> tuple[bool | None, str]:
        self.client.put_item(TableName=self.table, Item={"pk": {"S": "gsi"}, "day": {"S": "2026-03-14"}})
        for _ in range(10):
            items = self.client.query(
                TableName=self.table, IndexName="by_day", KeyConditionExpression="#d = :d",
                ExpressionAttributeNames={"#d": "day"}, ExpressionAttributeValues={":d": {"S": "2026-03-14"}},
            )["Items"]  # fmt: skip
            if items:
                return True, f"{len(items)} item(s) by the index"
            time.sleep(1)
        return False, "the index found nothing in 10 s"

    def keys_only_refused(self) -> tuple[bool | None, str]:
        table = f"{self.table}_keys_only"
        try:
            self.client.create_table(
                TableName=table, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "c", "AttributeType": "S"}],
                GlobalSecondaryIndexes=[{"IndexName": "by_c", "KeySchema": [{"AttributeName": "c", "KeyType": "HASH"}],
                                         "Projection": {"ProjectionType": "KEYS_ONLY"}}],
            )  # fmt: skip
        except Exception as exc:
            return True, f"refused: {_error_code(exc)} (deploy/yandex uses ALL)"
        self._wait_active(table)
        self.client.delete_table(TableName=table)
        return False, "accepted (KEYS_ONLY would work too)"

    def ttl(self) -> tuple[bool | None, str]:
        try:
            self.client.update_time_to_live(
                TableName=self.table, TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True}
            )
        except Exception as exc:
            return False, f"UpdateTimeToLive refused: {_error_code(exc)}"
        status = self.client.describe_time_to_live(TableName=self.table)["TimeToLiveDescription"]
        expired = {"pk": {"S": "expired"}, "expires_at": {"N": str(int(time.time()) - 3600)}}
        self.client.put_item(TableName=self.table, Item=expired)
        still = "Item" in self.client.get_item(
            TableName=self.table, Key={"pk": expired["pk"]}, ConsistentRead=True
        )
        return (
            True,
            f"{status.get('TimeToLiveStatus')}; an item expired an hour ago is {'still' if still else 'not'} read",
        )


class MessageQueue:
    def __init__(self, client: Any, name: str):
        self.client = client
        self.name = name
        self.url = ""

    @property
    def protocol(self) -> str:
        return str(self.client.meta.service_model.protocol)

    def create(self) -> None:
        self.url = self.client.create_queue(QueueName=self.name)["QueueUrl"]

    def drop(self) -> None:
        if self.url:
            self.client.delete_queue(QueueUrl=self.url)

    def round_trip(self) -> tuple[bool | None, str]:
        self.client.send_message(
            QueueUrl=self.url, MessageBody='{"type": "smoke"}', DelaySeconds=1,
            MessageAttributes={"leadflow_attempt": {"DataType": "String", "StringValue": "2"}},
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            messages = self.client.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=1, WaitTimeSeconds=5,
                AttributeNames=["All"], MessageAttributeNames=["All"],
            ).get("Messages", [])  # fmt: skip
            if messages:
                message = messages[0]
                self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
                attempt = message.get("MessageAttributes", {}).get("leadflow_attempt", {}).get("StringValue")
                system = sorted(message.get("Attributes", {}))
                return attempt == "2", f"attempt attribute {attempt!r}; system attributes {system}"
        return False, "the message did not come back in 30 s"


def run(checks: list[tuple[str, Check]]) -> list[tuple[str, bool | None, str]]:
    results = []
    for name, check in checks:
        try:
            holds, detail = check()
        except Exception as exc:
            holds, detail = None, f"could not run: {_error_code(exc)}: {str(exc)[:200]}"
        results.append((name, holds, detail))
        mark = {True: "yes", False: "NO ", None: "?? "}[holds]
        print(f"[{mark}] {name}: {detail}", flush=True)
    return results


def main(argv: list[str] | None = None, *, dynamodb: Any = None, sqs: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--endpoint", help="the database's Document API endpoint (terraform output document_api_endpoint)"
    )
    parser.add_argument("--ymq-endpoint", default=YMQ_ENDPOINT)
    parser.add_argument("--prefix", default="leadflow_smoke", help="names of the scratch table and queue")
    args = parser.parse_args(argv)
    import boto3
    import botocore

    if dynamodb is None:
        if not args.endpoint:
            parser.error("--endpoint is required")
        dynamodb = boto3.client("dynamodb", endpoint_url=args.endpoint, region_name=REGION)
    if sqs is None:
        sqs = boto3.client("sqs", endpoint_url=args.ymq_endpoint, region_name=REGION)
    suffix = uuid.uuid4().hex[:8]
    docapi = DocumentApi(dynamodb, f"{args.prefix}_{suffix}")
    queue = MessageQueue(sqs, f"{args.prefix}_{suffix}")
    print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}; SQS protocol: {queue.protocol}")
    results: list[tuple[str, bool | None, str]] = []
    try:
        docapi.create()
        results += run([
            ("conditional write with IN", docapi.conditional_in),
            ("SET n = n + :one", docapi.set_arithmetic),
            ("ADD under a condition", docapi.conditional_add),
            ("ReturnValuesOnConditionCheckFailure", docapi.return_values_on_conflict),
            ("query by a global secondary index (ALL)", docapi.gsi_query),
            ("KEYS_ONLY projection refused", docapi.keys_only_refused),
            ("TTL", docapi.ttl),
        ])  # fmt: skip
    except Exception as exc:
        print(f"Document API: could not create the scratch table: {_error_code(exc)}: {exc}")
        return 1
    finally:
        try:
            docapi.drop()
        except Exception as exc:
            print(f"(the scratch table {docapi.table} is left: {_error_code(exc)})")
    try:
        queue.create()
        results += run([(f"Message Queue round trip ({queue.protocol} protocol)", queue.round_trip)])
    except Exception as exc:
        print(
            f"[NO ] Message Queue with botocore {botocore.__version__} ({queue.protocol}): {_error_code(exc)}: {exc}"
        )
        results.append(("Message Queue", False, _error_code(exc)))
    finally:
        with contextlib.suppress(Exception):  # nothing was created
            queue.drop()
    held = sum(1 for _, holds, _ in results if holds)
    print(f"{held} of {len(results)} hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
