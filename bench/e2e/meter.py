"""Counting what a run would cost on AWS, from inside the local stack's processes.

- every boto3 call goes through botocore's event system: 'before-call' counts it by service,
  operation and *who* made it. In the stack's process that is its own machinery (pollers =
  Lambda's SQS event source mapping, which AWS also bills as SQS requests); in a worker
  (`in_worker`, planted with LocalStack(worker_setup=...)) it is the worker's function, and the
  worker's counts come back with each invocation (`Meter.merge`);
- DynamoDB capacity units are *estimated from item sizes* (moto's ConsumedCapacity is a constant
  0.5/1.0, not a measurement): reads ceil(size/4 KB) halved when eventually consistent, writes
  ceil(size/1 KB) plus one write per GSI the item is in; a failed conditional write costs
  1 WRU (AWS charges it, the size is not known from the error). An UpdateItem/DeleteItem
  answer does not hold the item: it is read back once the run is over (`settle`), not during
  it, so sizing does not load the emulator under measurement (an item that grew later counts
  its final size);
- Lambda durations are the handler's own time, measured in the worker.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

_current = threading.local()
READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def current_caller() -> str:
    """The function being invoked on this thread; 'poller' for the SQS event source mapping."""
    caller = getattr(_current, "function", None)
    if caller:
        return str(caller)
    return "poller" if threading.current_thread().name.startswith("poller-") else "stack"


class invoking:
    def __init__(self, function: str):
        self.function = function

    def __enter__(self) -> None:
        self.previous = getattr(_current, "function", None)
        _current.function = self.function

    def __exit__(self, *exc: object) -> None:
        _current.function = self.previous


def attribute_size(value: Any) -> int:
    """DynamoDB's item size rules, approximately: UTF-8 bytes of names and values."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, int | float | Decimal):
        return min(21, 1 + len(str(value)) // 2 + 1)
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in (
            "S",
            "N",
            "B",
            "BOOL",
            "NULL",
            "M",
            "L",
            "SS",
            "NS",
            "BS",
        ):
            ((kind, inner),) = value.items()  # wire format {"S": "..."}
            if kind == "N":
                return min(21, 1 + len(str(inner)) // 2 + 1)
            return attribute_size(inner)
        return 3 + sum(len(k.encode()) + attribute_size(v) for k, v in value.items())
    if isinstance(value, list | set | tuple):
        return 3 + sum(attribute_size(v) + 1 for v in value)
    return len(str(value))


class Meter:
    def __init__(self, gsi_keys: dict[str, list[str]]):
        self.gsi_keys = gsi_keys  # table → attribute names that put an item into a GSI
        self.calls: Counter[tuple[str, str, str]] = Counter()  # (caller, service, operation)
        self.tables: Counter[tuple[str, str, str]] = Counter()  # DynamoDB (caller, operation, table)
        self.rru: Counter[str] = Counter()  # caller → read request units
        self.wru: Counter[str] = Counter()
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.invocations: Counter[str] = Counter()
        self.api_requests = 0
        self.empty_receives = 0
        self.unsized: list[tuple[str, str, dict]] = []  # (caller, table, key) of updates to size
        self._lock = threading.Lock()
        self._size_client: Any = None

    # -- wiring
    def install(self, session: Any) -> None:
        """Hook a boto3 Session's botocore events (before any client is made from it)."""
        events = session._session.get_component("event_emitter")
        events.register("before-call", self._before_call)
        events.register("before-parameter-build.dynamodb", self._keep_params)
        events.register("after-call.dynamodb", self._after_dynamodb)
        events.register("after-call-error.dynamodb", self._after_dynamodb_error)
        events.register("after-call.sqs.ReceiveMessage", self._after_receive)

    def set_size_client(self, client: Any) -> None:
        """A DynamoDB client on another session (not counted) to size items an UpdateItem wrote."""
        self._size_client = client

    def _before_call(self, model: Any, params: dict, **_: Any) -> None:
        service = model.service_model.service_name
        with self._lock:
            self.calls[(current_caller(), service, model.name)] += 1

    def _keep_params(self, params: dict, context: dict, model: Any, **_: Any) -> None:
        context["meter_params"] = dict(params)  # after-call gets the context, not the params
        table = params.get("TableName") or ",".join(params.get("RequestItems", {}))
        with self._lock:
            self.tables[(current_caller(), model.name, table)] += 1

    def _after_receive(self, parsed: dict, **_: Any) -> None:
        if not parsed.get("Messages"):
            with self._lock:
                self.empty_receives += 1

    def _after_dynamodb_error(self, model: Any, **_: Any) -> None:
        if model.name in WRITES:
            with self._lock:
                self.wru[current_caller()] += 1

    def _after_dynamodb(self, model: Any, parsed: dict, context: dict, **_: Any) -> None:
        op = model.name
        if op not in READS | WRITES:
            return
        request = context.get("meter_params") or {}
        table = request.get("TableName", "")
        units_read = units_write = 0.0
        if op == "GetItem":
            units_read = _read_units(attribute_size(parsed.get("Item") or {}), request.get("ConsistentRead"))
        elif op in ("Query", "Scan"):
            size = sum(attribute_size(i) for i in parsed.get("Items", []))
            units_read = _read_units(size, request.get("ConsistentRead"))
        elif op == "BatchGetItem":
            for items in parsed.get("Responses", {}).values():
                units_read += sum(_read_units(attribute_size(i), False) for i in items)
        elif op == "PutItem":
            units_write = self._write_units(table, request.get("Item", {}))
        elif op in ("UpdateItem", "DeleteItem"):
            if request.get("ReturnValues") == "ALL_NEW" and "Attributes" in parsed:
                units_write = self._write_units(table, parsed["Attributes"])
            else:  # sized once the run is over (`settle`): a read here would load the emulator
                with self._lock:
                    self.unsized.append((current_caller(), table, wire_key(request.get("Key", {}))))
        elif op in ("BatchWriteItem", "TransactWriteItems"):
            units_write = 2.0 * len(json.dumps(request)) / 1024  # rare here; a coarse upper bound
        with self._lock:
            self.rru[current_caller()] += units_read
            self.wru[current_caller()] += units_write

    def settle(self) -> None:
        """Size the items UpdateItem/DeleteItem wrote, as they are now, and count their WRU."""
        with self._lock:
            unsized, self.unsized = self.unsized, []
        for caller, table, key in unsized:
            units = self._write_units(table, self._stored_item(table, key))
            with self._lock:
                self.wru[caller] += units

    def _write_units(self, table: str, item: dict) -> float:
        units = max(1, math.ceil(attribute_size(item) / 1024))
        in_gsis = sum(1 for key in self.gsi_keys.get(table, []) if key in item)
        return float(units * (1 + in_gsis))

    def _stored_item(self, table: str, key: dict) -> dict:
        if not self._size_client or not table or not key:
            return {}
        try:
            return dict(self._size_client.get_item(TableName=table, Key=wire_key(key)).get("Item") or {})
        except Exception:  # sizing is best effort: a missing item counts as 1 unit
            return {}

    # -- what the workers report
    def report(self) -> dict:
        """This process's counts since the last report (a worker's, after each invocation)."""
        with self._lock:
            counted = {
                "calls": [[service, op, n] for (_, service, op), n in self.calls.items()],
                "tables": [[op, table, n] for (_, op, table), n in self.tables.items()],
                "rru": sum(self.rru.values()),
                "wru": sum(self.wru.values()),
                "unsized": [[table, key] for _, table, key in self.unsized],
            }
            self.calls.clear()
            self.tables.clear()
            self.rru.clear()
            self.wru.clear()
            self.unsized.clear()
        return counted

    def merge(self, function: str, duration_ms: float, counted: dict) -> None:
        """One invocation of `function`: its duration and what its worker counted."""
        with self._lock:
            self.durations[function].append(duration_ms / 1000)
            self.invocations[function] += 1
            for service, op, n in counted.get("calls", []):
                self.calls[(function, service, op)] += n
            for op, table, n in counted.get("tables", []):
                self.tables[(function, op, table)] += n
            self.rru[function] += counted.get("rru", 0.0)
            self.wru[function] += counted.get("wru", 0.0)
            self.unsized.extend((function, table, key) for table, key in counted.get("unsized", []))


def wire_key(key: dict) -> dict:
    """A key as DynamoDB's JSON has it ({"lead_id": {"S": "L-1"}}), whichever form boto3 was given."""
    from boto3.dynamodb.types import TypeSerializer

    if all(isinstance(v, dict) and len(v) == 1 for v in key.values()):
        return key
    return {k: TypeSerializer().serialize(v) for k, v in key.items()}


def gsi_hash_keys() -> dict[str, list[str]]:
    from leadflow_local.template import load_template

    return {
        table: [gsi["KeySchema"][0]["AttributeName"] for gsi in props.get("GlobalSecondaryIndexes", [])]
        for table, props in load_template().tables().items()
    }


def in_worker(function: str) -> Any:
    """Worker setup (LocalStack(worker_setup="bench.e2e.meter:in_worker")): count this worker's AWS
    requests as `function`'s; the returned report travels back with each invocation."""
    import os

    import boto3

    if os.environ.get("METER_OFF"):
        return None
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    meter = Meter(gsi_hash_keys())
    meter.install(boto3.DEFAULT_SESSION)
    _current.function = function  # a worker's one thread serves this one function
    return meter.report


def _read_units(size: int, consistent: Any) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units if consistent else units / 2)
