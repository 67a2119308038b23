"""Counting what a run would cost on AWS, from inside the local stack's process.

- every boto3 call goes through botocore's event system: 'before-call' counts it by service,
  operation and *who* made it (the function being invoked on this thread, else the stack's own
  machinery: pollers = Lambda's SQS event source mapping, which AWS also bills as SQS requests);
- DynamoDB capacity units are *estimated from item sizes* (moto's ConsumedCapacity is a constant
  0.5/1.0, not a measurement): reads ceil(size/4 KB) halved when eventually consistent, writes
  ceil(size/1 KB) plus one write per GSI the item is in; a failed conditional write costs
  1 WRU (AWS charges it, the size is not known from the error);
- Lambda durations are measured around each handler call in the invoke wrapper.
"""

from __future__ import annotations

import json
import math
import threading
import time
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
        self.rru: Counter[str] = Counter()  # caller → read request units
        self.wru: Counter[str] = Counter()
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.invocations: Counter[str] = Counter()
        self.api_requests = 0
        self.empty_receives = 0
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

    def _keep_params(self, params: dict, context: dict, **_: Any) -> None:
        context["meter_params"] = dict(params)  # after-call gets the context, not the params

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
            units_write = self._write_units(table, self._stored_item(table, request.get("Key", {})))
        elif op in ("BatchWriteItem", "TransactWriteItems"):
            units_write = 2.0 * len(json.dumps(request)) / 1024  # rare here; a coarse upper bound
        with self._lock:
            self.rru[current_caller()] += units_read
            self.wru[current_caller()] += units_write

    def _write_units(self, table: str, item: dict) -> float:
        units = max(1, math.ceil(attribute_size(item) / 1024))
        in_gsis = sum(1 for key in self.gsi_keys.get(table, []) if key in item)
        return float(units * (1 + in_gsis))

    def _stored_item(self, table: str, key: dict) -> dict:
        if not self._size_client or not table or not key:
            return {}
        from boto3.dynamodb.types import TypeSerializer

        wire = all(isinstance(v, dict) and len(v) == 1 for v in key.values())
        if not wire:
            key = {k: TypeSerializer().serialize(v) for k, v in key.items()}
        try:
            return dict(self._size_client.get_item(TableName=table, Key=key).get("Item") or {})
        except Exception:  # sizing is best effort: a missing item counts as 1 unit
            return {}

    # -- the invoke wrapper
    def timed_invoke(self, name: str, call: Any) -> Any:
        started = time.perf_counter()
        try:
            with invoking(name):
                return call()
        finally:
            with self._lock:
                self.durations[name].append(time.perf_counter() - started)
                self.invocations[name] += 1


def _read_units(size: int, consistent: Any) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units if consistent else units / 2)
