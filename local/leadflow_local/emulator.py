"""The AWS emulator (moto's server) in a process of its own, with writes atomic as DynamoDB's.

Its own process, so the emulator's request handling does not compete for one interpreter lock
with the gateway, the pollers and the functions. `python -m leadflow_local.emulator` starts
it: it makes moto's writes atomic (`install_atomic_writes`), binds a free port on 127.0.0.1,
prints ``ready <port>`` and serves until its stdin closes (the stack stopped, or died) or it is
terminated. `Emulator` is the stack's side: it starts that process and creates the tables,
queues and schedules of template.yaml in it.

moto applies a conditional write as an unlocked read-modify-write, so two requests can both pass
one condition. DynamoDB writes one item atomically and answers with that write's values: one
lock per request, its answer written under the lock, gives moto that (`_patch_moto`). The tests
use the same shim in-process (`atomic_moto_writes`).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from leadflow_local.template import Template

REGION = "eu-central-1"
ACCOUNT = "123456789012"
DIRECT_JSON_OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "Query", "Scan", "BatchGetItem"})
START_TIMEOUT_S = 30


# --------------------------------------------------------------------------- atomic writes


def _patch_moto() -> Callable[[], None]:
    """Make moto's DynamoDB requests (and SQS receives) atomic; returns the undo.

    One lock per DynamoDB request, held from its parsed parameters to its written answer: a
    conditional write is checked and applied with no other request in between, and its answer
    is that write's values, written before anyone else can change the item — as DynamoDB does.
    Reads take it too: moto hands out its live items (an update changes them in place) and a
    query walks the table while a put may grow it ("dictionary changed size during iteration",
    seen under load); DynamoDB's reads see one committed version of each item. Nothing is
    copied: the answer is text by the time the lock goes.
    """
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.models import Queue, SQSBackend

    request_lock = threading.Lock()
    handle = DynamoHandler.call_action

    def atomic_request(self: Any) -> Any:
        with request_lock:
            return handle(self)

    originals: list[tuple[type, str, Any]] = [(DynamoHandler, "call_action", handle)]
    DynamoHandler.call_action = atomic_request  # type: ignore[method-assign]

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


def _speed_up_moto() -> None:
    """moto's server spends most of its time on bookkeeping the local stack can skip; what it
    answers stays what moto would answer.

    - lookups it repeats for every request have answers fixed for the process's life: the list
      of its service packages (a directory listing and a stat per entry, under the dispatcher's
      global lock), the handler methods of a response class, the snake_case of a CamelCase name;
    - a request id is 52 random characters drawn one `random.choice` at a time: from os.urandom;
    - DynamoDB's item operations build their answer as a dict already in DynamoDB's JSON form,
      then walk the operation's output shape to write the same JSON again. For the operations
      in DIRECT_JSON_OPERATIONS that walk changes nothing (checked response by response over an
      e2e run), so their answer is written directly; anything else, errors included, takes
      moto's way;
    - a Query on a table's own key sorts every item of the table to keep those with the key: it
      looks in that key's bucket instead (the same items, in the same order), so its cost is
      the answer's, not the table's;
    - each message a receive hands out asks for all the queue's attributes (counting every
      message) to read its retention period: it reads the retention period.
    """
    import functools
    import secrets

    from moto import backends
    from moto.core import responses
    from moto.dynamodb.models.table import Table
    from moto.sqs import models as sqs_models
    from moto.sqs.models import SQSBackend

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)
    # A pure function of a few dozen names (actions, queue attributes), run for every request.
    for module in (responses, sqs_models):
        module.camelcase_to_underscores = functools.cache(module.camelcase_to_underscores)  # type: ignore[attr-defined]

    def request_id(headers: dict[str, Any] | None = None) -> str:
        value = secrets.token_hex(26).upper()
        if isinstance(headers, dict):
            headers["x-amzn-requestid"] = value
        return value

    responses.gen_amzn_requestid_long = request_id  # type: ignore[attr-defined,assignment]

    serialize = responses.ActionResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if (
            context.service_model.service_name == "dynamodb"
            and context.operation_model.name in DIRECT_JSON_OPERATIONS
            and isinstance(self.result, dict)
        ):
            try:
                return 200, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(self.result)
            except (TypeError, ValueError):  # e.g. binary attributes: moto encodes them
                pass
        return serialize(self, context)

    responses.ActionResult.execute_result = execute_result  # type: ignore[method-assign]

    query, all_items = Table.query, Table.all_items
    bucket = threading.local()  # the key a base-table query is looking for, on this thread

    def keyed_query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        bucket.table, bucket.key = id(self), hash_key
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            bucket.table = bucket.key = None

    def items_for_query(table: Any) -> Any:
        if getattr(bucket, "table", None) != id(table):
            return all_items(table)
        found = table.items.get(bucket.key)  # .get: the table's defaultdict must not grow
        if found is None:
            return []
        return sorted(found.values(), key=lambda item: item.range_key) if table.range_key_attr else [found]

    Table.query, Table.all_items = keyed_query, items_for_query  # type: ignore[method-assign,assignment]

    def retained(self: Any, queue_name: str, message: Any) -> bool:
        retention_s = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_s + message.sent_timestamp / 1000 > time.time())

    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]


QUEUE_MESSAGES_PATH = "/_leadflow/queue-messages"


def queue_messages() -> dict[str, list[dict]]:
    """Every message of every queue, those in flight too (for `leadflow up --data`): a receive
    would miss the ones a function is working on, so they are read from moto's backend."""
    from moto.sqs.models import sqs_backends

    kept: dict[str, list[dict]] = {}
    for queue in sqs_backends[ACCOUNT][REGION].queues.values():
        with queue._messages_lock:
            messages = list(queue._messages)
        kept[queue.name] = [{"body": m.body, "attributes": m.message_attributes} for m in messages]
    return kept


class FastLane:
    """moto's server hands each request to a Flask app per service, which routes it by URL to the
    service's response handler. DynamoDB's and SQS's JSON requests all go to "/" of one handler
    named by X-Amz-Target: this WSGI app hands them to it directly, and everything else to
    moto's own app. The handler, and so the answer, is moto's either way."""

    def __init__(self, app: Any):
        from moto.core.request import Request
        from moto.dynamodb.responses import DynamoHandler
        from moto.sqs.responses import SQSResponse

        class ServerRequest(Request):
            from_wsgi_server = True  # as moto's Flask request class says of itself

        self.app, self.request_class = app, ServerRequest
        self.handlers = {"DynamoDB_20120810": DynamoHandler.dispatch, "AmazonSQS": SQSResponse.dispatch}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        from http import HTTPStatus

        if environ.get("PATH_INFO") == QUEUE_MESSAGES_PATH:
            data = json.dumps(queue_messages()).encode("utf-8")
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
            )
            return [data]
        handler = self.handlers.get(environ.get("HTTP_X_AMZ_TARGET", "").partition(".")[0])
        if handler is None or environ.get("PATH_INFO") != "/" or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        request = self.request_class(environ)
        status, headers, body = handler(request, request.raw_url, dict(request.headers))
        data = body.encode() if isinstance(body, str) else body
        status = int(headers.pop("status", status))
        headers = {key: str(value) for key, value in headers.items()}
        headers["Content-Length"] = str(len(data))
        start_response(f"{status} {HTTPStatus(status).phrase}", list(headers.items()))
        return [data]


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as AWS endpoints speak it, for moto's WSGI application.

    moto's own server (werkzeug's development server) closes the connection after every request,
    so every AWS call cost a TCP connection and a new server thread, and each one lingered
    10 ms reading what might follow. boto3 always states a body's length, so the body is read
    whole, the application gets a plain WSGI environ, and the connection stays open."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # header and body go out as they are written

    def _serve(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if self.headers.get("Transfer-Encoding") or not length.isdigit():
            self.close_connection = True
            self.send_error(411, "a Content-Length is required")
            return
        body = self.rfile.read(int(length))
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]  # type: ignore[index,str-unpack]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "", "PATH_INFO": unquote(path),
            "QUERY_STRING": query, "RAW_URI": self.path, "REQUEST_URI": self.path,
            "SERVER_NAME": str(host), "SERVER_PORT": str(port), "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0], "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        }  # fmt: skip
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return chunks.append

        chunks: list[bytes] = []
        result = self.server.app(environ, start_response)  # type: ignore[attr-defined]
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        data = b"".join(chunks)
        code, _, reason = answer["status"].partition(" ")
        self.send_response(int(code), reason)
        for name, value in answer["headers"]:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a poller or worker at stop, a webhook sender) is no error to print."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class EmulatorServer(QuietServer):
    daemon_threads = True

    def __init__(self, app: Any):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.app = app


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

    def __init__(self, template: Template, flavor: str = "aws"):
        self.template = template
        self.flavor = flavor  # yandex: every index projects ALL, as YDB's Document API allows
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

    def queue_messages(self) -> dict[str, list[dict]]:
        """Every queue's messages, in flight or not (see queue_messages in the emulator process)."""
        from urllib.request import urlopen

        with urlopen(f"{self.endpoint}{QUEUE_MESSAGES_PATH}", timeout=30) as answer:  # noqa: S310 - loopback
            return dict(json.loads(answer.read()))

    def create_resources(self) -> None:
        create_tables(self.client("dynamodb"), self.template, all_projections=self.flavor == "yandex")
        create_buckets(self.client("s3"), self.template)
        self.queue_urls = create_queues(self.client("sqs"), self.template)
        events = self.client("events")
        for spec in self.template.functions().values():
            for i, expression in enumerate(spec.schedules):
                events.put_rule(
                    Name=f"leadflow-{spec.name}-{i}", ScheduleExpression=expression, State="ENABLED"
                )

    def resolve(self, value: Any, parameters: dict[str, str]) -> str:
        """A template value (Ref / GetAtt of our resources or parameters) as the local stack sees it."""
        if isinstance(value, str | int | float):
            return str(value)
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


def create_tables(dynamodb: Any, template: Template, *, all_projections: bool = False) -> None:
    """template.yaml's tables; ``all_projections``: every index projects ALL (the yandex flavour)."""
    for name, props in template.tables().items():
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = [
                {**index, "Projection": {"ProjectionType": "ALL"}} if all_projections else index
                for index in props["GlobalSecondaryIndexes"]
            ]
        stream = props.get("StreamSpecification")
        if stream:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **stream}
        dynamodb.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


def create_buckets(s3: Any, template: Template) -> None:
    """template.yaml's buckets, named by their logical ids (as the tables are)."""
    for name in template.buckets():
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})


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
    import faulthandler

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    # Ctrl-C reaches the whole process group: the stack decides when the emulator stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    install_atomic_writes()
    _speed_up_moto()
    # Many request threads, each mostly waiting on its socket: with the default 5 ms switch
    # interval a thread back from I/O queues behind a busy one for up to 5 ms, several times per
    # request. Switching sooner keeps each request's latency near its CPU time.
    sys.setswitchinterval(float(os.environ.get("LEADFLOW_EMULATOR_SWITCH_S", "0.0005")))
    server = EmulatorServer(FastLane(DomainDispatcherApplication(create_backend_app)))
    threading.Thread(target=server.serve_forever, name="emulator", daemon=True).start()
    print(f"ready {server.server_address[1]}", flush=True)
    sys.stdin.read()  # returns at EOF: the stack closed our stdin or is gone
    os._exit(0)  # request threads may sit in long polls: no need to wait for them


if __name__ == "__main__":
    main()
