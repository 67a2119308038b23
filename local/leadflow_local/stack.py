"""`leadflow up`: the whole system on one machine, no AWS account, no internet.

- an AWS emulator (moto's server) in its own process, writes atomic as DynamoDB's, with every
  table and queue created from template.yaml (leadflow_local.emulator);
- the five functions in worker processes, a small warm pool each, Timeout enforced by killing
  the worker (leadflow_local.workers);
- a gateway turning HTTP requests into API Gateway (HTTP API, payload 2.0) events for ingest;
- pollers handing real SQS-shaped batches to score and route — long polls, as many at once as
  the function has workers — honouring batchItemFailures, redelivery (with a short backoff
  instead of the full visibility timeout) and the DLQs;
- a scheduler firing escalate and remind with EventBridge-shaped events, on the clock that
  `--speed K` runs K times faster;
- outbound messages recorded in the conversation table (the outbox) unless real tokens are set;
- failpoints (LEADFLOW_FAILPOINTS) checked at start and counted across workers in a state file.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from leadflow_local import functions, snapshot
from leadflow_local.emulator import (  # noqa: F401 - re-exported: the CLI, inspect and tests import them from here
    ACCOUNT,
    REGION,
    Emulator,
    QuietServer,
    aws_env,
    create_buckets,
    create_queues,
    create_tables,
    queue_arn,
)
from leadflow_local.streams import StreamPoller, StreamReader
from leadflow_local.template import Template, load_template, rate_seconds
from leadflow_local.worker import LOCAL_RETRY_DELAY_ENV
from leadflow_local.workers import POOL_SIZES, FunctionPool, Invocation, InvocationFailed
from leadflow_local.zygote import Zygote

EXAMPLE_CONFIG = Path(__file__).with_name("example_business.yaml")
STATE_DIR = Path(".leadflow")
# aws: Lambda's event shapes and semantics. yandex: Yandex Cloud's (adapters/platform/yandex.py) —
# API Gateway payload 1.0, Message Queue trigger batches without receive counts or receipt handles
# and without partial batch failure, timer-trigger ticks, indexes that project ALL. (TTL deletes
# late in both: the emulator never deletes by TTL.)
FLAVORS = ("aws", "yandex")
CHANNELS = ("telegram", "whatsapp", "instagram", "vk", "form", "call", "sms", "bitrix24", "amocrm")
# Development secrets the local stack generates when the environment has none: every channel
# stays fail-closed, and `make demo` signs its requests with these.
DEV_SECRETS = (
    "TELEGRAM_WEBHOOK_SECRET", "META_APP_SECRET", "META_VERIFY_TOKEN", "VK_SECRET", "VK_CONFIRMATION_CODE",
    "FORM_SECRET", "CALL_SECRET", "BITRIX24_APP_TOKEN", "SMS_API_KEY", "SMS_WEBHOOK_SECRET", "AMOCRM_WEBHOOK_SECRET",
)  # fmt: skip


def state_file_for(state_dir: Path, port: int) -> Path:
    """One state file per running stack: two `leadflow up` in one folder never share one."""
    return state_dir / f"local-{port}.json"


class PortInUse(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def function_env(
    emulator: Emulator, template: Template, name: str, parameters: dict[str, str]
) -> dict[str, str]:
    spec = template.functions()[name]
    return {key: emulator.resolve(value, parameters) for key, value in spec.environment.items()}


def quiet_local_runtime() -> None:
    """Locally, EMF metrics and INFO logs on stdout would drown what the user wants to see."""
    import warnings

    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    from leadflow.observability import logger

    logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"])


# --------------------------------------------------------------------------- gateway


def api_gateway_event(
    method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes, source_ip: str
) -> dict:
    parts = raw_path.strip("/").split("/")
    channel = parts[1] if len(parts) > 1 else ""
    path_parameters: dict[str, str]
    if parts[0] == "ics":
        route = "/ics/{token}"
        path_parameters = {"token": "/".join(parts[1:])}
        route_key = f"GET {route}"
    elif parts[0] == "panel":
        route = "/panel" if len(parts) == 1 else "/panel/{proxy+}"
        path_parameters = {"proxy": "/".join(parts[1:])} if len(parts) > 1 else {}
        route_key = f"GET {route}" if route == "/panel" else f"ANY {route}"
    else:
        route = "/webhooks/call/events/{kind}" if parts[1:3] == ["call", "events"] else "/webhooks/{channel}"
        path_parameters = (
            {"kind": parts[3]} if route.endswith("{kind}") and len(parts) > 3 else {"channel": channel}
        )
        route_key = f"{method} {route}"
    lowered = {k.lower(): v for k, v in headers.items()}
    # Payload 2.0 moves the Cookie header into a list of cookies, as API Gateway does.
    cookies = [c.strip() for c in lowered.pop("cookie", "").split(";") if c.strip()]
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    now = datetime.now(UTC)
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": lowered,
        **({"cookies": cookies} if cookies else {}),
        "queryStringParameters": dict(parse_qsl(query, keep_blank_values=True)) or None,
        "pathParameters": path_parameters,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": "127.0.0.1",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }


def yandex_gateway_event(
    method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes, source_ip: str
) -> dict:
    """The same request as Yandex API Gateway hands it to a function: payload format 1.0
    (api-gateway/concepts/extensions/cloud-functions), headers as sent, query values as lists."""
    aws = api_gateway_event(method, raw_path, query, headers, body, source_ip)
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        multi_query.setdefault(key, []).append(value)
    resource = aws["routeKey"].split(" ", 1)[1]
    now = datetime.now(UTC)
    user_agent = headers.get("User-Agent", headers.get("user-agent", ""))
    return {
        "version": "1.0",
        "resource": resource,
        "path": raw_path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()},
        "multiValueQueryStringParameters": multi_query,
        "requestContext": {
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
            "httpMethod": method,
            "requestId": aws["requestContext"]["requestId"],
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp()),
        },
        "pathParameters": aws["pathParameters"],
        "body": aws["body"],
        "isBase64Encoded": aws["isBase64Encoded"],
        "parameters": aws["pathParameters"],
        "multiValueParameters": {k: [v] for k, v in aws["pathParameters"].items()},
        "operationId": "mango_events" if resource.endswith("{kind}") else f"webhook_{method.lower()}",
    }


class Gateway:
    def __init__(
        self,
        port: int,
        invoke_ingest: Callable[[dict], dict],
        state: Callable[[], dict],
        make_event: Callable[..., dict] = api_gateway_event,
        invoke_panel: Callable[[dict], dict] | None = None,
    ):

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if parts.path == "/_leadflow/state" and self.command == "GET":
                    # For `--port` CLI use on this machine only: never through a tunnel, never secrets.
                    if self.headers.get("X-Forwarded-For") or not self.client_address[0].startswith("127."):
                        self._reply(404, "not found", "text/plain")
                        return
                    public = {k: v for k, v in state().items() if k != "secrets"}
                    self._reply(200, json.dumps(public), "application/json")
                    return
                is_panel = (
                    parts.path == "/panel"
                    or parts.path.startswith("/panel/")
                    or (parts.path.startswith("/ics/") and self.command == "GET")
                )
                if not (parts.path.startswith("/webhooks/") or (is_panel and invoke_panel)):
                    self._reply(404, "not found", "text/plain")
                    return
                invoke = invoke_panel if is_panel and invoke_panel else invoke_ingest
                event = make_event(
                    self.command,
                    parts.path,
                    parts.query,
                    dict(self.headers.items()),
                    body,
                    self.client_address[0],
                )
                try:
                    answer = invoke(event)
                except InvocationFailed:  # the worker timed out or crashed: no answer from ingest
                    self._reply(502, "bad gateway: the function did not answer", "text/plain")
                    return
                except Exception as exc:  # ingest raised: a 500, as API Gateway would answer
                    self._reply(500, f"internal error: {type(exc).__name__}", "text/plain")
                    return
                headers = answer.get("headers") or {}
                payload = answer.get("body") or ""
                data = base64.b64decode(payload) if answer.get("isBase64Encoded") else payload.encode("utf-8")
                extra = [
                    (k, str(v))
                    for k, v in headers.items()
                    if k.lower() not in ("content-type", "content-length")
                ]
                cookies = (
                    answer.get("cookies") or (answer.get("multiValueHeaders") or {}).get("Set-Cookie") or []
                )
                extra += [("Set-Cookie", cookie) for cookie in cookies]  # payload 2.0 / 1.0
                self._reply(
                    int(answer.get("statusCode", 200)), data, headers.get("Content-Type", "text/plain"), extra
                )

            def _reply(
                self,
                status: int,
                body: str | bytes,
                content_type: str,
                extra: list[tuple[str, str]] = (),  # type: ignore[assignment]
            ) -> None:
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        try:
            self.server = QuietServer(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise PortInUse(f"port {port} is in use (is another `leadflow up` running?)") from exc
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():  # shutdown() waits for serve_forever, which a failed start never ran
            self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- pollers and scheduler


def sqs_event(messages: list[dict], queue: str) -> dict:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    k: {"stringValue": v.get("StringValue"), "dataType": v.get("DataType", "String")}
                    for k, v in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn(queue),
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def ymq_trigger_event(messages: list[dict], queue: str) -> dict:
    """A Message Queue trigger's batch (functions/concepts/trigger/ymq-trigger): no receipt handle,
    no receive count — only SentTimestamp among the system attributes."""
    return {
        "messages": [
            {
                "event_metadata": {
                    "event_id": str(uuid.uuid4()),
                    "event_type": "yandex.cloud.events.messagequeue.QueueMessage",
                    "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                },
                "details": {
                    "queue_id": f"yrn:yc:ymq:ru-central1:{ACCOUNT}:{queue}",
                    "message": {
                        "message_id": m["MessageId"],
                        "md5_of_body": m.get("MD5OfBody", ""),
                        "body": m["Body"],
                        "attributes": {"SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", "")},
                        "message_attributes": {
                            k: {"dataType": "StringValue", "stringValue": v.get("StringValue")}
                            for k, v in m.get("MessageAttributes", {}).items()
                        },
                        "md5_of_message_attributes": m.get("MD5OfMessageAttributes", ""),
                    },
                },
            }
            for m in messages
        ]
    }


def yandex_timer_event(name: str) -> dict:
    """A timer trigger's tick (functions/concepts/trigger/timer)."""
    return {
        "messages": [
            {
                "event_metadata": {
                    "event_id": str(uuid.uuid4()),
                    "event_type": "yandex.cloud.events.serverless.triggers.TimerMessage",
                    "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "cloud_id": "local",
                    "folder_id": "local",
                },
                "details": {"trigger_id": f"leadflow-{name}-timer", "payload": name},
            }
        ]
    }


class Poller(threading.Thread):
    """Lambda's SQS event source mapping, locally: long-poll, invoke, delete what succeeded.

    A queue gets as many pollers as its function has workers, so every worker can have a batch.
    Locally a batch goes as soon as it is received (no MaximumBatchingWindowInSeconds wait).
    ``flavor="yandex"``: a Message Queue trigger instead — Yandex-shaped batches and no partial
    batch failure: a batch whose invocation returns is deleted whole, one that fails comes back whole."""

    WAIT_S = 20  # moto answers a long poll as soon as a message arrives

    def __init__(
        self,
        sqs: Any,
        queue: str,
        url: str,
        batch_size: int,
        invoke: Callable[[dict], Any],
        stop: threading.Event,
        number: int = 0,
        flavor: str = "aws",
    ):
        # The name says "poller": bench/e2e/meter.py bills these requests to the event source mapping.
        super().__init__(daemon=True, name=f"poller-{queue}-{number}")
        self.sqs, self.queue, self.url, self.batch_size, self.invoke = sqs, queue, url, batch_size, invoke
        self.stopping = stop
        self.flavor = flavor

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once(wait_s=self.WAIT_S)
            except Exception as exc:  # the emulator going away at shutdown
                if not self.stopping.is_set():
                    print(f"leadflow up: {self.queue} poller: {type(exc).__name__}: {exc}", flush=True)
                    self.stopping.wait(0.5)

    def poll_once(self, wait_s: int = 0) -> int:
        messages: list[dict] = []
        while len(messages) < self.batch_size:  # SQS hands out at most 10 per receive; Lambda more
            asked = min(self.batch_size - len(messages), 10)
            answer = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=asked, WaitTimeSeconds=0 if messages else wait_s,
                AttributeNames=["All"], MessageAttributeNames=["All"],
            )  # fmt: skip
            received = answer.get("Messages", [])
            messages.extend(received)
            if len(received) < asked:
                break
        if not messages:
            return 0
        try:
            if self.flavor == "yandex":
                self.invoke(ymq_trigger_event(messages, self.queue))
                failed: set[str] = set()  # the trigger reads no answer: the batch is done
            else:
                result = self.invoke(sqs_event(messages, self.queue)) or {}
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:  # the handler raised, timed out or crashed: the whole batch comes back
            failed = {m["MessageId"] for m in messages}
        for m in messages:
            if m["MessageId"] in failed:
                receives = int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                # Back off like a short visibility timeout, so retries show up in seconds locally.
                self.sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"],
                                                   VisibilityTimeout=min(2 ** receives, 30))  # fmt: skip
            else:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return len(messages)


def scheduled_event(rule: str) -> dict:
    from leadflow import clock

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


class Scheduler(threading.Thread):
    """EventBridge schedules on the leadflow clock: rate(1 minute) at --speed 60 fires every second."""

    def __init__(
        self,
        jobs: list[tuple[str, int]],
        invoke: Callable[[str, dict], Any],
        speed: float,
        stop: threading.Event,
        flavor: str = "aws",
    ):
        super().__init__(daemon=True, name="scheduler")
        self.jobs, self.invoke, self.speed, self.stopping = jobs, invoke, speed, stop
        self.flavor = flavor

    def run(self) -> None:
        last = {name: float("-inf") for name, _ in self.jobs}
        while not self.stopping.is_set():
            for name, every_s in self.jobs:
                # Measured from the last run at the current speed, so a change of speed applies at once.
                if time.monotonic() - last[name] >= max(every_s / self.speed, 0.2):
                    last[name] = time.monotonic()
                    try:
                        yandex = self.flavor == "yandex"
                        self.invoke(
                            name, yandex_timer_event(name) if yandex else scheduled_event(f"leadflow-{name}")
                        )
                    except Exception as exc:
                        if not self.stopping.is_set():  # at stop, a run cut short is expected
                            print(f"leadflow up: {name} failed: {type(exc).__name__}: {exc}", flush=True)
            self.stopping.wait(0.1)


# --------------------------------------------------------------------------- the stack


class LocalStack:
    def __init__(self, port: int = 3000, config_path: Path | None = None, speed: float = 1.0,
                 state_dir: Path = STATE_DIR, schedule: bool = True, clock_start: datetime | None = None,
                 pool_sizes: dict[str, int] | None = None, timeouts: dict[str, float] | None = None,
                 worker_setup: str | None = None, data_dir: Path | None = None,
                 on_invocation: Callable[[str, dict, Invocation], None] | None = None,
                 flavor: str = "aws"):  # fmt: skip
        """For benches and tests: `pool_sizes` overrides workers per function (POOL_SIZES),
        `timeouts` the Timeout of template.yaml; `worker_setup` ("module:function") runs in each
        worker before it serves and `on_invocation` sees each successful invocation
        (leadflow_local.workers). `flavor`: the cloud whose events and semantics it plays (FLAVORS)."""
        if flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}, not {flavor!r}")
        self.flavor = flavor
        self.clock_start = clock_start
        self.template = load_template()
        self.requested_port = port
        self.config_path = config_path or EXAMPLE_CONFIG
        self.config_given = config_path is not None
        self.data_dir = data_dir
        self.restored: dict[str, int] | None = None  # what --data brought back
        self._data_lock: Any = None
        self.speed = speed
        self.state_dir = state_dir
        self.state_file: Path | None = None  # state_dir/local-<port>.json, once the port is known
        self.schedule = schedule
        self.pool_sizes = {**POOL_SIZES, **(pool_sizes or {})}
        self.timeouts = timeouts or {}
        self.worker_setup = worker_setup
        self.on_invocation = on_invocation
        self.stopping = threading.Event()
        self._snapshot_lock = threading.Lock()
        self.started = False
        self.emulator = Emulator(self.template, flavor)
        self.zygote = Zygote()
        self.envs: dict[str, dict[str, str]] = {}
        self.pools: dict[str, FunctionPool] = {}
        self.dev_secrets: dict[str, str] = {}
        self.gateway: Gateway | None = None
        self.failpoints_state: Path | None = None
        self.threads: list[threading.Thread] = []
        self.pollers: list[Poller] = []
        self.streams: list[StreamReader] = []

    # -- lifecycle
    def start(self) -> None:
        from leadflow import failpoints, wiring
        from leadflow.business import load_business_config

        # An unknown failpoint stops the run before anything starts (the message lists the known ones).
        failpoints.parse(os.environ.get(failpoints.ENV, ""))
        if self.data_dir:
            self._data_lock = snapshot.lock(self.data_dir)
        self._environ_before = dict(os.environ)  # the stack sets endpoints, secrets, clock: undone at stop
        business_yaml = self.config_path.read_text(encoding="utf-8")
        load_business_config(self.config_path)  # refuse a bad config before starting anything
        self.gateway = Gateway(
            self.requested_port,
            lambda event: self.invoke("ingest", event),
            self.state,
            yandex_gateway_event if self.flavor == "yandex" else api_gateway_event,
            lambda event: self.invoke("panel", event),
        )
        for name in DEV_SECRETS:
            if not os.environ.get(name):
                self.dev_secrets[name] = secrets.token_urlsafe(18)
        os.environ.update(self.dev_secrets)
        quiet_local_runtime()
        if self.speed != 1 or self.clock_start:
            os.environ["LEADFLOW_CLOCK_SPEED"] = str(self.speed)
            os.environ["LEADFLOW_CLOCK_ORIGIN"] = str(time.time())
        if self.clock_start:
            os.environ["LEADFLOW_CLOCK_START"] = self.clock_start.isoformat()
        # The zygote imports the handlers while the emulator starts; workers get their full
        # environment (endpoints included) when they are forked.
        self.zygote.start({**os.environ, **self._local_overrides(dict(os.environ))})
        self.emulator.start()
        parameters = {"Stage": "local", "SecretsPrefix": "", "AlarmEmail": ""}
        # Links the stack hands out (the bot's /panel) point at this gateway unless told otherwise.
        os.environ.setdefault("PUBLIC_BASE_URL", self.url)
        for name in functions.FUNCTION_NAMES:
            self.envs[name] = function_env(self.emulator, self.template, name, parameters)
            if self.flavor == "yandex":
                self.envs[name] |= {"LEADFLOW_PLATFORM": "yandex", LOCAL_RETRY_DELAY_ENV: "1"}
        worker_base = self._worker_base_env()
        os.environ.update(self.envs["ingest"])
        wiring.reset()
        if self.data_dir:
            self.restored = snapshot.restore(self.emulator, self.data_dir)
        if self.restored is None or self.config_given:  # a restored stack keeps its pushed config
            wiring.store().config.put(business_yaml)

        for name in functions.FUNCTION_NAMES:
            timeout_s = self.timeouts.get(name, self.template.functions()[name].timeout)
            env = {**worker_base, **self.envs[name], **self._local_overrides(worker_base)}
            pool = FunctionPool(self.zygote, name, self.pool_sizes[name], env, timeout_s, self.worker_setup)
            self.pools[name] = pool
            pool.start()
        for pool in self.pools.values():
            pool.wait_ready()

        # Long polls of up to 20 s: the read timeout must outlast them.
        sqs = self.emulator.client("sqs", read_timeout=Poller.WAIT_S + 10, retries={"max_attempts": 2},
                                   max_pool_connections=50)  # fmt: skip
        for spec in self.template.functions().values():
            for source in spec.sqs_sources:
                url = self.emulator.queue_urls[source["queue"]]
                invoke = functools.partial(self.invoke, spec.name)
                # A Message Queue trigger takes at most 10 a batch (deploy/yandex: route 10, score 1).
                batch = min(source["batch_size"], 10) if self.flavor == "yandex" else source["batch_size"]
                for number in range(self.pool_sizes[spec.name]):
                    self.pollers.append(
                        Poller(sqs, source["queue"], url, batch, invoke, self.stopping, number, self.flavor)
                    )
        self.threads.extend(self.pollers)
        self.streams = self._stream_readers()
        self.threads.extend(StreamPoller(reader, self.stopping) for reader in self.streams)
        if self.schedule:
            jobs = [
                (s.name, rate_seconds(e)) for s in self.template.functions().values() for e in s.schedules
            ]
            self.threads.append(Scheduler(jobs, self.invoke, self.speed, self.stopping, self.flavor))
        if self.data_dir:
            self.threads.append(
                threading.Thread(target=self._snapshot_now_and_then, name="snapshot", daemon=True)
            )
        self.gateway.start()
        for thread in self.threads:
            thread.start()
        self.started = True
        self.write_state()

    def _stream_readers(self) -> list[StreamReader]:
        """A reader for each DynamoDB stream a function consumes (the panel's tally of lead facts);
        none in the yandex flavour, whose deployment has no such trigger (deploy/yandex/tables.tf)."""
        if self.flavor == "yandex":
            return []
        dynamodb = self.emulator.client("dynamodb")
        streams = self.emulator.client("dynamodbstreams", retries={"max_attempts": 2})
        readers = []
        for spec in self.template.functions().values():
            for source in spec.stream_sources:
                arn = dynamodb.describe_table(TableName=source["table"])["Table"]["LatestStreamArn"]
                invoke = functools.partial(self.invoke, spec.name)
                failed = self._on_failure(source["on_failure"]) if source["on_failure"] else None
                readers.append(
                    StreamReader(
                        streams, arn, source["batch_size"], invoke, REGION, source["table"], failed,
                        window_s=source["window_s"],
                    )
                )  # fmt: skip
        return readers

    def _on_failure(self, queue: str) -> Callable[[dict], None]:
        """A stream batch that kept failing: its coordinates to the on-failure queue, as Lambda sends them."""
        sqs, url = self.emulator.client("sqs"), self.emulator.queue_urls[queue]

        def send(record: dict) -> None:
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))

        return send

    def _worker_base_env(self) -> dict[str, str]:
        """What every worker starts from: this process's environment now (secrets, endpoints, clock),
        and a fresh failpoint count for this run."""
        from leadflow import failpoints

        assert self.gateway
        env = dict(os.environ)
        if env.get(failpoints.ENV):
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.failpoints_state = self.state_dir / f"failpoints-{self.gateway.port}.json"
            self.failpoints_state.write_text("{}", encoding="utf-8")
            env[failpoints.STATE_ENV] = str(self.failpoints_state)
        return env

    @staticmethod
    def _local_overrides(base: dict[str, str]) -> dict[str, str]:
        # The template asks for INFO logs; locally they would drown what the user wants to see.
        return {
            key: base[key] for key in ("POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_DISABLED") if key in base
        }

    def stop(self) -> None:
        self.stopping.set()
        if self.gateway:
            self.gateway.stop()
        for pool in self.pools.values():
            pool.stop()
        self.zygote.stop()
        if self.data_dir and self.started and self.emulator.process:
            self.save_snapshot()  # never over the data of a stack that did not start
        self.emulator.stop()  # pollers in a long poll get their answer: the connection closes
        for thread in self.threads:
            thread.join(timeout=5)
        if self.state_file:
            self.state_file.unlink(missing_ok=True)
        if self._data_lock:
            self._data_lock.close()
        if self.failpoints_state:
            self.failpoints_state.unlink(missing_ok=True)
        if hasattr(self, "_environ_before"):
            os.environ.clear()
            os.environ.update(self._environ_before)

    def save_snapshot(self) -> dict[str, int]:
        assert self.data_dir
        with self._snapshot_lock:
            return snapshot.save(self.emulator, self.data_dir)

    def _snapshot_now_and_then(self) -> None:
        """Between the snapshots at stop: a stack killed outright loses at most this much."""
        while not self.stopping.wait(snapshot.SNAPSHOT_EVERY_S):
            try:
                self.save_snapshot()
            except Exception as exc:  # the emulator stopping under us; the snapshot at stop decides
                if not self.stopping.is_set():
                    print(f"leadflow up: could not write the snapshot: {exc}", flush=True)

    def invoke(self, name: str, event: dict) -> Any:
        """One invocation in one of the function's workers: its result, or FunctionError (the
        handler raised) / InvocationFailed (timed out or crashed)."""
        invocation = self.pools[name].invoke(event)
        if self.on_invocation:
            self.on_invocation(name, event, invocation)
        return invocation.result

    # -- what the CLI reads
    @property
    def url(self) -> str:
        assert self.gateway
        return f"http://127.0.0.1:{self.gateway.port}"

    def panel_login_link(self, staff_id: str | None = None) -> str | None:
        """A one-time login link for ``staff_id``, else the config's first owner (or senior)."""
        from leadflow import wiring
        from leadflow.steps.panel.auth import first_admin, issue_login_link

        who = staff_id or first_admin(wiring.business().staff)
        if who is None:
            return None
        return issue_login_link(wiring.store().panel, who, self.url)

    def webhook_urls(self) -> dict[str, str]:
        return {channel: f"{self.url}/webhooks/{channel}" for channel in CHANNELS}

    def write_state(self) -> None:
        assert self.gateway
        self.state_file = state_file_for(self.state_dir, self.gateway.port)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.state(), indent=2), encoding="utf-8")
        self.state_file.chmod(0o600)  # it holds the development secrets

    def state(self) -> dict:
        return {
            "pid": os.getpid(),
            "url": self.url,
            "port": self.gateway.port if self.gateway else None,
            "aws_endpoint": self.emulator.endpoint,
            "emulator_pid": self.emulator.process.pid if self.emulator.process else None,
            "workers": {name: pool.pids() for name, pool in self.pools.items()},
            "speed": self.speed,
            "flavor": self.flavor,
            "clock_origin": os.environ.get("LEADFLOW_CLOCK_ORIGIN"),
            "clock_start": os.environ.get("LEADFLOW_CLOCK_START"),
            "env": self.envs,
            "secrets": {name: os.environ[name] for name in DEV_SECRETS if os.environ.get(name)},
            "config": str(self.config_path),
            "data": str(self.data_dir) if self.data_dir else None,
        }

    def drain(self, timeout_s: float = 30) -> bool:
        """Wait until the queues are empty and the streams delivered (demo, tests). True when they are."""
        sqs = self.emulator.client("sqs")
        deadline = time.monotonic() + timeout_s
        quiet_since = None
        while time.monotonic() < deadline:
            busy = 0
            for name in {p.queue for p in self.pollers}:
                attrs = sqs.get_queue_attributes(
                    QueueUrl=self.emulator.queue_urls[name],
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                busy += int(attrs["ApproximateNumberOfMessages"]) + int(
                    attrs["ApproximateNumberOfMessagesNotVisible"]
                )
            busy += sum(not reader.caught_up for reader in self.streams)
            if busy == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 0.5:
                    return True
            else:
                quiet_since = None
            # Not more often: moto counts a queue's messages one by one for every answer.
            time.sleep(0.25)
        return False
