"""`leadflow up`: the whole system on one machine, no AWS account, no internet.

- an AWS emulator (moto server) with every table and queue created from template.yaml;
- a gateway turning HTTP requests into API Gateway (HTTP API, payload 2.0) events for ingest;
- pollers handing real SQS-shaped batches to score and route, honouring batchItemFailures,
  redelivery (with a short backoff instead of the full visibility timeout) and the DLQs;
- a scheduler firing escalate and remind with EventBridge-shaped events, on the clock that
  `--speed K` runs K times faster;
- outbound messages recorded in the conversation table (the outbox) unless real tokens are set.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from urllib.request import Request, urlopen

from leadflow_local import functions
from leadflow_local.template import Template, load_template, rate_seconds

REGION = "eu-central-1"
ACCOUNT = "123456789012"
EXAMPLE_CONFIG = Path(__file__).with_name("example_business.yaml")
STATE_DIR = Path(".leadflow")
STATE_FILE = STATE_DIR / "local.json"
CHANNELS = ("telegram", "whatsapp", "instagram", "vk", "form", "call", "sms", "bitrix24")
# Development secrets the local stack generates when the environment has none: every channel
# stays fail-closed, and `make demo` signs its requests with these.
DEV_SECRETS = (
    "TELEGRAM_WEBHOOK_SECRET", "META_APP_SECRET", "META_VERIFY_TOKEN", "VK_SECRET", "VK_CONFIRMATION_CODE",
    "FORM_SECRET", "CALL_SECRET", "BITRIX24_APP_TOKEN", "SMS_API_KEY", "SMS_WEBHOOK_SECRET",
)  # fmt: skip


class PortInUse(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


class Emulator:
    """moto server in this process, and the resources of template.yaml inside it."""

    def __init__(self, template: Template):
        self.template = template
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.queue_urls: dict[str, str] = {}
        self._server: Any = None

    def start(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per emulator request otherwise

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        # moto keeps its state per process: a stack started after another one in the same process
        # (tests, `leadflow invoke`) must not find the last one's tables.
        urlopen(Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=10).close()  # noqa: S310 - loopback
        os.environ.update(aws_env(self.endpoint))
        self.create_resources()

    def stop(self) -> None:
        if self._server:
            self._server.stop()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip

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


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


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
    if parts[0] == "panel":
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
        "pathParameters": path_parameters or None,
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


class Gateway:
    def __init__(
        self,
        port: int,
        invoke_ingest: Callable[[dict], dict],
        state: Callable[[], dict],
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
                is_panel = parts.path == "/panel" or parts.path.startswith("/panel/")
                if not (parts.path.startswith("/webhooks/") or (is_panel and invoke_panel)):
                    self._reply(404, "not found", "text/plain")
                    return
                invoke = invoke_panel if is_panel and invoke_panel else invoke_ingest
                event = api_gateway_event(
                    self.command,
                    parts.path,
                    parts.query,
                    dict(self.headers.items()),
                    body,
                    self.client_address[0],
                )
                try:
                    answer = invoke(event)
                except Exception as exc:  # a crash in ingest is a 500, as API Gateway would answer
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
                extra += [("Set-Cookie", cookie) for cookie in answer.get("cookies") or []]
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
            self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
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


class Poller(threading.Thread):
    """Lambda's SQS event source mapping, locally: receive, invoke, delete what succeeded."""

    def __init__(
        self,
        sqs: Any,
        queue: str,
        url: str,
        batch_size: int,
        invoke: Callable[[dict], Any],
        stop: threading.Event,
    ):
        super().__init__(daemon=True, name=f"poller-{queue}")
        self.sqs, self.queue, self.url, self.batch_size, self.invoke, self.stopping = (
            sqs,
            queue,
            url,
            batch_size,
            invoke,
            stop,
        )

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once(wait_s=1)
            except Exception as exc:  # the emulator going away at shutdown, or a handler crash
                if not self.stopping.is_set():
                    print(f"leadflow up: {self.queue} poller: {type(exc).__name__}: {exc}", flush=True)
                    time.sleep(0.5)

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
            result = self.invoke(sqs_event(messages, self.queue)) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:
            failed = {m["MessageId"] for m in messages}  # the whole batch failed: all come back
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
    ):
        super().__init__(daemon=True, name="scheduler")
        self.jobs, self.invoke, self.speed, self.stopping = jobs, invoke, speed, stop

    def run(self) -> None:
        last = {name: float("-inf") for name, _ in self.jobs}
        while not self.stopping.is_set():
            for name, every_s in self.jobs:
                # Measured from the last run at the current speed, so a change of speed applies at once.
                if time.monotonic() - last[name] >= max(every_s / self.speed, 0.2):
                    last[name] = time.monotonic()
                    try:
                        self.invoke(name, scheduled_event(f"leadflow-{name}"))
                    except Exception as exc:
                        print(f"leadflow up: {name} failed: {type(exc).__name__}: {exc}", flush=True)
            self.stopping.wait(0.1)


# --------------------------------------------------------------------------- the stack


class LocalStack:
    def __init__(self, port: int = 3000, config_path: Path | None = None, speed: float = 1.0,
                 state_dir: Path = STATE_DIR, schedule: bool = True, clock_start: datetime | None = None):  # fmt: skip
        self.clock_start = clock_start
        self.template = load_template()
        self.requested_port = port
        self.config_path = config_path or EXAMPLE_CONFIG
        self.speed = speed
        self.state_file = state_dir / "local.json"
        self.schedule = schedule
        self.stopping = threading.Event()
        self.emulator = Emulator(self.template)
        self.envs: dict[str, dict[str, str]] = {}
        self.dev_secrets: dict[str, str] = {}
        self.gateway: Gateway | None = None
        self.threads: list[threading.Thread] = []
        self.pollers: list[Poller] = []

    # -- lifecycle
    def start(self) -> None:
        from leadflow import wiring
        from leadflow.business import load_business_config

        self._environ_before = dict(os.environ)  # the stack sets endpoints, secrets, clock: undone at stop
        business_yaml = self.config_path.read_text(encoding="utf-8")
        load_business_config(self.config_path)  # refuse a bad config before starting anything
        self.gateway = Gateway(
            self.requested_port,
            lambda event: self.invoke("ingest", event),
            self.state,
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
        self.emulator.start()
        parameters = {"Stage": "local", "SecretsPrefix": "", "AlarmEmail": ""}
        # Links the stack hands out (the bot's /panel) point at this gateway unless told otherwise.
        os.environ.setdefault("PUBLIC_BASE_URL", self.url)
        for name in functions.FUNCTION_NAMES:
            self.envs[name] = function_env(self.emulator, self.template, name, parameters)
        os.environ.update(self.envs["ingest"])
        wiring.reset()
        wiring.store().config.put(business_yaml)
        for name in functions.FUNCTION_NAMES:
            functions.load_function(name)  # import now: the first webhook should not pay for it

        sqs = self.emulator.client("sqs")
        for spec in self.template.functions().values():
            for source in spec.sqs_sources:
                url = self.emulator.queue_urls[source["queue"]]
                invoke = functools.partial(self.invoke, spec.name)
                self.pollers.append(
                    Poller(sqs, source["queue"], url, source["batch_size"], invoke, self.stopping)
                )
        self.threads.extend(self.pollers)
        if self.schedule:
            jobs = [
                (s.name, rate_seconds(e)) for s in self.template.functions().values() for e in s.schedules
            ]
            self.threads.append(Scheduler(jobs, self.invoke, self.speed, self.stopping))
        self.gateway.start()
        for thread in self.threads:
            thread.start()
        self.write_state()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=5)
        if self.gateway:
            self.gateway.stop()
        self.emulator.stop()
        self.state_file.unlink(missing_ok=True)
        if hasattr(self, "_environ_before"):
            os.environ.clear()
            os.environ.update(self._environ_before)

    def invoke(self, name: str, event: dict) -> Any:
        spec = self.template.functions()[name]
        return functions.invoke_concurrently(name, event, self.envs[name], spec.timeout)

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
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.state(), indent=2), encoding="utf-8")
        self.state_file.chmod(0o600)  # it holds the development secrets

    def state(self) -> dict:
        return {
            "pid": os.getpid(),
            "url": self.url,
            "port": self.gateway.port if self.gateway else None,
            "aws_endpoint": self.emulator.endpoint,
            "speed": self.speed,
            "clock_origin": os.environ.get("LEADFLOW_CLOCK_ORIGIN"),
            "clock_start": os.environ.get("LEADFLOW_CLOCK_START"),
            "env": self.envs,
            "secrets": {name: os.environ[name] for name in DEV_SECRETS if os.environ.get(name)},
            "config": str(self.config_path),
        }

    def drain(self, timeout_s: float = 30) -> bool:
        """Wait until the queues are empty (demo, tests). True when they are."""
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
            if busy == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 0.5:
                    return True
            else:
                quiet_since = None
            time.sleep(0.1)
        return False
