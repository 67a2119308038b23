"""The AWS emulator (moto's server) in a process of its own, with writes atomic as DynamoDB's.

Its own process, so the emulator's request handling does not compete for one interpreter lock
with the gateway, the pollers and the functions. `python -m leadflow_local.emulator` starts
it: it makes moto's writes atomic (`install_atomic_writes`), binds a free port on 127.0.0.1,
prints ``ready <port>`` and serves until its stdin closes (the stack stopped, or died) or it is
terminated. `Emulator` is the stack's side: it starts that process and creates the tables,
queues and schedules of template.yaml in it.

moto applies a conditional write as an unlocked read-modify-write, so two requests can both pass
one condition. DynamoDB writes one item atomically and answers with that write's values: one
lock per write request, its answer copied under the lock, gives moto that and nothing more.
The tests use the same shim in-process (`atomic_moto_writes`).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from leadflow_local.template import Template

REGION = "eu-central-1"
ACCOUNT = "123456789012"
DYNAMODB_WRITES = ("update_item", "put_item", "delete_item", "transact_write_items")
START_TIMEOUT_S = 30


# --------------------------------------------------------------------------- atomic writes


def _patch_moto() -> Callable[[], None]:
    """Make moto's DynamoDB writes (and SQS receives) atomic; returns the undo."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.sqs.models import Queue, SQSBackend

    # Re-entrant: a transaction applies its items through the same backend.
    write_lock = threading.RLock()
    originals: list[tuple[type, str, Any]] = []

    def atomic(write: Any) -> Any:
        def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
            with write_lock:
                return copy.deepcopy(write(self, *args, **kwargs))

        return locked

    for name in DYNAMODB_WRITES:
        if hasattr(DynamoDBBackend, name):
            originals.append((DynamoDBBackend, name, getattr(DynamoDBBackend, name)))
            setattr(DynamoDBBackend, name, atomic(getattr(DynamoDBBackend, name)))

    # Several pollers long-poll one queue: moto's receive checks a message's visibility and marks
    # it received without a lock, so two receives could take the same message. One receive at a
    # time picks messages; the lock is let go while a receive waits for messages to arrive.
    receive_lock = threading.Lock()
    receive, wait = SQSBackend.receive_message, Queue.wait_for_messages

    def locked_receive(self: Any, *args: Any, **kwargs: Any) -> Any:
        with receive_lock:
            return receive(self, *args, **kwargs)

    def unlocked_wait(self: Any, timeout: int) -> None:
        receive_lock.release()
        try:
            wait(self, timeout)
        finally:
            receive_lock.acquire()

    originals += [(SQSBackend, "receive_message", receive), (Queue, "wait_for_messages", wait)]
    SQSBackend.receive_message = locked_receive  # type: ignore[method-assign]
    Queue.wait_for_messages = unlocked_wait  # type: ignore[method-assign]

    def undo() -> None:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)

    return undo


def install_atomic_writes() -> None:
    """For the emulator process: atomic for the rest of its life."""
    _patch_moto()


@contextmanager
def atomic_moto_writes() -> Iterator[None]:
    """For tests running moto in-process (tests/unit/routing/test_fairness.py, crm/test_rate_limit.py)."""
    undo = _patch_moto()
    try:
        yield
    finally:
        undo()


# --------------------------------------------------------------------------- the stack's side


def aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


class Emulator:
    """The emulator process, and the resources of template.yaml inside it."""

    def __init__(self, template: Template):
        self.template = template
        self.port = 0
        self.endpoint = ""
        self.queue_urls: dict[str, str] = {}
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "leadflow_local.emulator"],
            stdin=subprocess.PIPE,  # closed by stop() — or by the kernel if the stack dies
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout
        line = _readline(self.process.stdout, START_TIMEOUT_S)
        if not line.startswith("ready "):
            self.stop()
            raise RuntimeError(f"the AWS emulator did not start: {line.strip() or 'no answer'}")
        self.port = int(line.split()[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        os.environ.update(aws_env(self.endpoint))
        self.create_resources()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin:
            process.stdin.close()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()

    def client(self, service: str, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="local", aws_secret_access_key="local",
                            config=Config(**config) if config else None)  # fmt: skip

    def create_resources(self) -> None:
        create_tables(self.client("dynamodb"), self.template)
        self.queue_urls = create_queues(self.client("sqs"), self.template)
        events = self.client("events")
        for spec in self.template.functions().values():
            for i, expression in enumerate(spec.schedules):
                events.put_rule(
                    Name=f"leadflow-{spec.name}-{i}", ScheduleExpression=expression, State="ENABLED"
                )

    def resolve(self, value: Any, parameters: dict[str, str]) -> str:
        """A template value (Ref / GetAtt of our resources or parameters) as the local stack sees it."""
        if isinstance(value, str):
            return value
        if "Ref" in value:
            return parameters.get(value["Ref"], value["Ref"])  # a table's name is its logical id
        if "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            if attribute == "QueueUrl":
                return self.queue_urls[resource]
            if attribute == "Arn":
                return queue_arn(resource)
        raise ValueError(f"cannot resolve {value!r} locally")


def _readline(stream: Any, timeout_s: float) -> str:
    """One line from a child's stdout, or "" if none comes in time (a reader thread: pipes have no timeout)."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    return lines[0] if lines else ""


def create_tables(dynamodb: Any, template: Template) -> None:
    for name, props in template.tables().items():
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        dynamodb.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


def create_queues(sqs: Any, template: Template) -> dict[str, str]:
    urls = {}
    queues = template.queues()
    # Dead-letter queues first: the others point at them.
    for name, props in sorted(queues.items(), key=lambda item: "RedrivePolicy" in item[1]):
        attributes = {k: str(props[k]) for k in ("VisibilityTimeout", "MessageRetentionPeriod") if k in props}
        redrive = props.get("RedrivePolicy")
        if redrive:
            target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": queue_arn(target), "maxReceiveCount": str(redrive["maxReceiveCount"])}
            )
        urls[name] = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return urls


# --------------------------------------------------------------------------- the emulator process


def main() -> None:
    import logging

    from moto.server import ThreadedMotoServer

    # Ctrl-C reaches the whole process group: the stack decides when the emulator stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    install_atomic_writes()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(f"ready {server.get_host_and_port()[1]}", flush=True)
    sys.stdin.read()  # returns at EOF: the stack closed our stdin or is gone
    os._exit(0)  # the server's threads may sit in long polls: no need to wait for them


if __name__ == "__main__":
    main()
