"""An in-memory Bitrix24 portal behind an inbound webhook, speaking the documented REST shapes.

``with Bitrix24Portal() as portal:`` → ``portal.webhook_url`` (``http://127.0.0.1:P/rest/1/CODE/``).

- Success: ``{"result": …, "time": {…}}``; failure: ``{"error": "…", "error_description": "…"}``
  with the documented status (400 method errors, 401 INVALID_CREDENTIALS, 404
  ERROR_METHOD_NOT_FOUND, 503 QUERY_LIMIT_EXCEEDED, 429 OPERATION_TIME_LIMIT, 500).
- ``batch`` with ``cmd[key]="method?query"`` (JSON or form body), ``halt``, ``$result[key][…]``
  substitution, and result/result_error/result_total/result_next/result_time. Its documented
  rules hold: at most 50 commands (more: 400 ERROR_BATCH_LENGTH_EXCEEDED and nothing runs), no
  ``batch`` inside a batch, a failed command's error in ``result_error`` while the others run.
- ``violations``: every broken rule of the API (too many commands, ``$result`` of a command that
  is not before it, too many findbycomm values). The test fixtures fail a test that leaves any.
- Parameters arrive as JSON or as PHP-style form keys (``fields[PHONE][0][VALUE]=…``).
- A leaky bucket (default 2/s drain, 50 before blocking) counts HTTP requests, as the portal does.
- The webhook's permissions (``scopes``, default crm and user): ``scope`` lists them, a ``crm.*``
  method without «crm» is refused with 403 ``insufficient_scope``; ``profile`` answers the webhook's
  user (an empty result when the user is deactivated: ``user_active = False``). A wrong webhook code
  gets ``wrong_code_error`` (default 401 INVALID_CREDENTIALS; the docs' NO_AUTH_FOUND can be chosen).
- Faults: ``fail_next`` (any status/code), ``delay_next`` (client timeout) and
  ``apply_then_lose_next`` (the request is carried out, the answer never arrives).
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.fakes.http import FakeServer, Request, Response

DEFAULT_CODE = "b24webhooksecretcode"
MAX_BATCH_COMMANDS = 50  # "The number of requests in a batch is limited to 50."
MAX_FINDBYCOMM_VALUES = 20  # crm.duplicate.findbycomm: "Maximum number of values — 20"


class MethodError(Exception):
    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(description)
        self.code = code
        self.description = description
        self.status = status


# --------------------------------------------------------------------------- PHP-style params


def parse_php_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=v`` pairs → nested dicts; dicts keyed 0..n-1 (or ``[]``) become lists."""
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = re.match(r"^([^\[]+)((?:\[[^\]]*\])*)$", raw_key)
        if not match:
            root[raw_key] = value
            continue
        path = [match.group(1), *re.findall(r"\[([^\]]*)\]", match.group(2))]
        node = root
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if part == "":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):  # "a=1&a[b]=2": the later, deeper key wins
                    node = {}
    return _listify(root)


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {k: _listify(v) for k, v in value.items()}
        if converted and all(k.isdigit() for k in converted):
            keys = sorted(converted, key=int)
            if [int(k) for k in keys] == list(range(len(keys))):
                return [converted[k] for k in keys]
        return converted
    return value


def parse_query(query: str) -> dict[str, Any]:
    return parse_php_pairs(parse_qsl(query, keep_blank_values=True))


def request_params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = parse_php_pairs(list(request.query.items())) if request.query else {}
    content_type = request.headers.get("content-type", "")
    if request.body:
        if "json" in content_type:
            body = request.json()
            if not isinstance(body, dict):
                raise MethodError("INVALID_REQUEST", "JSON body must be an object")
            params.update(body)
        else:
            params.update(parse_query(request.body.decode()))
    return params


# --------------------------------------------------------------------------- the portal


@dataclass
class Fault:
    status: int = 500
    error: str = "INTERNAL_SERVER_ERROR"
    description: str = "Internal server error"
    delay_s: float = 0.0
    apply: bool = False  # carry the request out, then answer with the fault (or not in time)
    method: str | None = None  # only requests to this method (e.g. "batch")
    skip: int = 0  # let this many matching requests through first


@dataclass
class Portal:
    mode: int = 2  # 1 classic, 2 simple (the default on new portals)
    users: set[int] = field(default_factory=lambda: {1, 2, 3, 5, 7, 9})
    required_fields: dict[str, set[str]] = field(default_factory=dict)  # entity → field names
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    deals: dict[int, dict[str, Any]] = field(default_factory=dict)
    activities: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    pinned: set[int] = field(default_factory=set)
    _next_id: int = 0

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def table(self, entity: str) -> dict[int, dict[str, Any]]:
        return {"lead": self.leads, "contact": self.contacts, "deal": self.deals}[entity]


ENTITY_TYPES = {1: "lead", 2: "deal", 3: "contact"}
MULTI_FIELDS = ("PHONE", "EMAIL", "WEB", "IM")


def _digits(value: Any) -> str:
    return re.sub(r"\D", "", str(value))


class Bitrix24Portal:
    """The fake: a Portal behind a FakeServer with auth, limits and faults."""

    def __init__(
        self,
        *,
        mode: int = 2,
        user_id: int = 1,
        code: str = DEFAULT_CODE,
        rate_per_s: float = 2.0,
        burst: int = 50,
        rate_limit: bool = True,
        scopes: tuple[str, ...] = ("crm", "user"),
        wrong_code_error: tuple[int, str, str] = (401, "INVALID_CREDENTIALS", "Invalid request credentials"),
    ):
        self.portal = Portal(mode=mode)
        self.scopes = list(scopes)
        self.wrong_code_error = wrong_code_error
        self.user_active = True
        self.user_id = user_id
        self.code = code
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.rate_limit = rate_limit
        self._counter = 0.0
        self._counter_at = time.monotonic()
        self._faults: deque[Fault] = deque()
        self._lock = threading.RLock()
        self.calls: list[str] = []  # REST methods as they reached the portal (batch commands included)
        self.http_methods: list[str] = []  # one per accepted HTTP request
        self.rejected: list[tuple[int, str]] = []  # (status, code) of refused HTTP requests
        self.violations: list[str] = []  # documented API rules a client broke (see the module doc)
        self.server = FakeServer(self._route)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Bitrix24Portal:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def webhook_url(self) -> str:
        return f"{self.server.url}/rest/{self.user_id}/{self.code}/"

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        status: int = 500,
        error: str = "INTERNAL_SERVER_ERROR",
        description: str = "Internal server error",
        *,
        times: int = 1,
        method: str | None = None,
    ) -> None:
        with self._lock:
            self._faults.extend(Fault(status, error, description, method=method) for _ in range(times))

    def delay_next(self, seconds: float, *, times: int = 1, method: str | None = None, skip: int = 0) -> None:
        """Carry the request out and answer after ``seconds`` (past the client's timeout)."""
        with self._lock:
            self._faults.extend(
                Fault(200, "", "", delay_s=seconds, apply=True, method=method, skip=skip)
                for _ in range(times)
            )

    def apply_then_lose_next(
        self,
        *,
        times: int = 1,
        method: str | None = "batch",
        status: int = 504,
        delay_s: float = 0.0,
        skip: int = 0,
    ) -> None:
        """The request is carried out; the client gets a 504 from the balancer (or, with
        ``delay_s`` past its timeout, nothing). ``skip`` lets that many matching requests pass first."""
        with self._lock:
            self._faults.extend(
                Fault(status, "", "Gateway Time-out", delay_s=delay_s, apply=True, method=method, skip=skip)
                for _ in range(times)
            )

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in (None, method):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    self._faults.remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------------ HTTP

    def _leaky_bucket_allows(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._counter = max(0.0, self._counter - (now - self._counter_at) * self.rate_per_s)
            self._counter_at = now
            if self._counter >= self.burst:
                return False
            self._counter += 1
            return True

    def _route(self, request: Request) -> Response:
        match = re.match(r"^/rest/(\d+)/([^/]+)/([\w.]+?)(?:\.json)?/?$", request.path)
        if not match:
            return self._error(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        user_id, code, method = int(match.group(1)), unquote(match.group(2)), match.group(3).lower()
        if user_id != self.user_id or code != self.code:
            status, error, description = self.wrong_code_error
            self.rejected.append((status, error))
            return self._error(status, error, description)
        if self.rate_limit and not self._leaky_bucket_allows():
            self.rejected.append((503, "QUERY_LIMIT_EXCEEDED"))
            return self._error(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
        fault = self._take_fault(method)
        if fault and not fault.apply:
            self.rejected.append((fault.status, fault.error))
            return self._error(fault.status, fault.error, fault.description)
        started = time.time()
        try:
            params = request_params(request)
            with self._lock:
                self.http_methods.append(method)
                result = self._batch(params) if method == "batch" else self._call(method, params)
            if isinstance(result, _ListPage):
                body: dict[str, Any] = {"result": result.items, "total": result.total}
                if result.next is not None:
                    body["next"] = result.next
            else:
                body = {"result": result}
            response = Response(200, {**body, "time": _time_block(started)})
        except MethodError as exc:
            response = self._error(exc.status, exc.code, exc.description)
        if fault:  # applied: now lose the answer
            if fault.status != 200:
                page = "<html><body><h1>504 Gateway Time-out</h1></body></html>"
                response = Response(fault.status, page, headers={"Content-Type": "text/html"})
            response.delay_s = fault.delay_s
        return response

    @staticmethod
    def _error(status: int, code: str, description: str) -> Response:
        return Response(status, {"error": code, "error_description": description})

    # ------------------------------------------------------------------ batch

    def _batch(self, params: dict[str, Any]) -> dict[str, Any]:
        commands = params.get("cmd") or {}
        if isinstance(commands, list):
            commands = {str(i): c for i, c in enumerate(commands)}
        if not isinstance(commands, dict):
            raise MethodError("INVALID_REQUEST", "cmd must be an array")
        if len(commands) > MAX_BATCH_COMMANDS:
            self.violations.append(f"batch of {len(commands)} commands (at most {MAX_BATCH_COMMANDS})")
            raise MethodError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded", 400)
        halt = str(params.get("halt", "0")) not in ("0", "", "false", "False")
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        times: dict[str, Any] = {}
        for key, command in commands.items():
            method, _, query = str(command).partition("?")
            method = method.strip().lower()
            started = time.time()
            try:
                if method == "batch":
                    raise MethodError(
                        "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage"
                    )
                raw_params = parse_query(query)
                for ref in _references(raw_params):
                    if ref not in results and ref not in errors:
                        self.violations.append(f"{key}: $result[{ref}] names no command before it")
                sub_params = _substitute(raw_params, results)
                value = self._call(method, sub_params)
            except MethodError as exc:
                errors[key] = {"error": exc.code, "error_description": exc.description}
                if halt:
                    break
                continue
            if isinstance(value, _ListPage):
                results[key] = value.items
                totals[key] = value.total
                if value.next is not None:
                    nexts[key] = value.next
            else:
                results[key] = value
            times[key] = _time_block(started)
        # PHP's json_encode: an empty array is [], a filled one an object.
        return {
            "result": results or [],
            "result_error": errors or [],
            "result_total": totals or [],
            "result_next": nexts or [],
            "result_time": times or [],
        }

    # ------------------------------------------------------------------ methods

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        self.calls.append(method)
        handler = _METHODS.get(method)
        if handler is None:
            raise MethodError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
        if method.startswith("crm.") and "crm" not in self.scopes:
            raise MethodError("insufficient_scope", "", 403)
        return handler(self, params)

    # basic -----------------------------------------------------------

    def profile(self, params: dict[str, Any]) -> Any:
        """The webhook's user; "If the user is inactive, the object is empty" (PHP: [])."""
        if not self.user_active:
            return []
        return {"ID": str(self.user_id), "ADMIN": True, "NAME": "Вадим", "LAST_NAME": "Валеев",
                "PERSONAL_GENDER": "", "TIME_ZONE": ""}  # fmt: skip

    def scope(self, params: dict[str, Any]) -> list[str]:
        """Without ``full``: the permissions this webhook has."""
        if str(params.get("full", "")).lower() in ("1", "true", "y"):
            return sorted({*self.scopes, "crm", "user", "task", "im", "telephony", "calendar", "disk"})
        return list(self.scopes)

    # entity CRUD ------------------------------------------------------

    def _validate(self, entity: str, fields: dict[str, Any]) -> None:
        missing = [
            name for name in sorted(self.portal.required_fields.get(entity, ())) if not fields.get(name)
        ]
        if missing:
            raise MethodError("", f"Required fields are not filled: {', '.join(missing)}")
        assigned = fields.get("ASSIGNED_BY_ID")
        if assigned not in (None, "") and int(assigned) not in self.portal.users:
            raise MethodError("", f"User with ID {assigned} not found")

    def _add(self, entity: str, params: dict[str, Any]) -> int:
        fields = params.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise MethodError("", "Parameter 'fields' must be array.")
        self._validate(entity, fields)
        record: dict[str, Any] = {}
        for name, value in fields.items():
            if name in MULTI_FIELDS and isinstance(value, list):
                record[name] = [
                    {
                        "ID": str(self.portal.new_id()),
                        "VALUE_TYPE": v.get("VALUE_TYPE", "WORK"),
                        "VALUE": v.get("VALUE"),
                    }
                    for v in value
                    if isinstance(v, dict)
                ]
            else:
                record[name] = _as_stored(value)
        if entity == "deal":
            contact_id = record.get("CONTACT_ID")
            if contact_id not in (None, "") and int(contact_id) not in self.portal.contacts:
                raise MethodError("", f"Contact with ID {contact_id} not found")
            record.setdefault("STAGE_ID", "NEW")
            record.setdefault("CATEGORY_ID", "0")
        if entity == "lead":
            record.setdefault("STATUS_ID", "NEW")
        record_id = self.portal.new_id()
        record["ID"] = str(record_id)
        record["DATE_CREATE"] = datetime.now(UTC).isoformat(timespec="seconds")
        record["_REGISTER_SONET_EVENT"] = (params.get("params") or {}).get("REGISTER_SONET_EVENT")
        self.portal.table(entity)[record_id] = record
        return record_id

    def _get(self, entity: str, params: dict[str, Any]) -> dict[str, Any]:
        record_id = params.get("id", params.get("ID"))
        try:
            record = self.portal.table(entity)[int(record_id)]  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            raise MethodError("", "Not found") from None
        return {k: v for k, v in record.items() if not k.startswith("_")}

    def _delete(self, entity: str, params: dict[str, Any]) -> bool:
        """crm.<entity>.delete: true, or "Not found" for an id that is not there."""
        record_id = params.get("id", params.get("ID"))
        try:
            del self.portal.table(entity)[int(record_id)]  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            raise MethodError("", "Not found") from None
        return True

    def _update(self, entity: str, params: dict[str, Any]) -> bool:
        record_id = params.get("id", params.get("ID"))
        try:
            record = self.portal.table(entity)[int(record_id)]  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            raise MethodError("", "Not found") from None
        fields = params.get("fields") or {}
        if not isinstance(fields, dict):
            raise MethodError("", "Parameter 'fields' must be array.")
        self._validate(entity, {**record, **fields})
        for name, value in fields.items():
            if name in MULTI_FIELDS and isinstance(value, list):
                record[name] = self._merge_multi(record.get(name) or [], value)
            else:
                record[name] = _as_stored(value)
        return True

    def _merge_multi(self, stored: list[dict[str, Any]], sent: list[Any]) -> list[dict[str, Any]]:
        """crm.*.update on a multi-field (PHONE…): a value with an ID changes that value (an empty
        VALUE deletes it); one without an ID is added beside the others."""
        values = [dict(v) for v in stored]
        for item in (v for v in sent if isinstance(v, dict)):
            if item.get("ID"):
                match = next((v for v in values if v["ID"] == str(item["ID"])), None)
                if match is not None and item.get("VALUE") in (None, ""):
                    values.remove(match)
                elif match is not None:
                    match.update({k: _as_stored(v) for k, v in item.items() if k != "ID"})
            else:
                values.append(
                    {
                        "ID": str(self.portal.new_id()),
                        "VALUE_TYPE": item.get("VALUE_TYPE", "WORK"),
                        "VALUE": item.get("VALUE"),
                    }
                )
        return values

    def _list(self, entity: str, params: dict[str, Any]) -> _ListPage:
        filter_ = params.get("filter") or {}
        rows = [r for r in self.portal.table(entity).values() if _matches(r, filter_)]
        rows.sort(key=lambda r: int(r["ID"]))
        order = params.get("order") or {}
        if isinstance(order, dict) and str(order.get("ID", "")).upper() == "DESC":
            rows.reverse()
        select = params.get("select") or ["*"]
        if isinstance(select, str):
            select = [select]
        start = int(params.get("start", 0) or 0)
        no_count = start == -1
        start = max(start, 0)
        page = rows[start : start + 50]
        shown = [_select(r, select) for r in page]
        nxt = start + 50 if len(rows) > start + 50 and not no_count else None
        return _ListPage(shown, 0 if no_count else len(rows), nxt)

    # methods ------------------------------------------------------------

    def mode_get(self, params: dict[str, Any]) -> int:
        return self.portal.mode

    def findbycomm(self, params: dict[str, Any]) -> dict[str, list[int]]:
        comm_type = str(params.get("type") or "").upper()
        if not comm_type:
            raise MethodError("Communication type is not defined", "Parameter 'type' is required.")
        if comm_type not in ("PHONE", "EMAIL"):
            raise MethodError("", f"Communication type '{comm_type}' is not supported in current context")
        values = params.get("values")
        if isinstance(values, str):
            values = [values]
        if not values:
            raise MethodError("Communication values is not defined", "Parameter 'values' is required.")
        if len(values) > MAX_FINDBYCOMM_VALUES:
            self.violations.append(f"findbycomm with {len(values)} values (at most {MAX_FINDBYCOMM_VALUES})")
            raise MethodError("", f"Too many values: {MAX_FINDBYCOMM_VALUES} at most")
        wanted = {_digits(v) if comm_type == "PHONE" else str(v).lower() for v in values}
        entity_type = str(params.get("entity_type") or "").upper()
        types = (
            [entity_type] if entity_type in ("LEAD", "CONTACT", "COMPANY") else ["LEAD", "CONTACT", "COMPANY"]
        )
        found: dict[str, list[int]] = {}
        for kind in types:
            if kind == "COMPANY":
                continue
            table = self.portal.leads if kind == "LEAD" else self.portal.contacts
            ids = []
            for record_id, record in sorted(table.items()):
                for item in record.get(comm_type) or []:
                    value = (
                        _digits(item.get("VALUE")) if comm_type == "PHONE" else str(item.get("VALUE")).lower()
                    )
                    if value in wanted:
                        ids.append(record_id)
                        break
            if ids:
                found[kind] = ids[:20]
        return found

    def comment_add(self, params: dict[str, Any]) -> int:
        fields = params.get("fields") or {}
        if not isinstance(fields, dict) or not fields.get("ENTITY_ID") or not fields.get("ENTITY_TYPE"):
            raise MethodError("100", "Required fields are not provided")
        if not fields.get("COMMENT"):
            raise MethodError("INVALID_ARG_VALUE", "Empty comment")
        entity = str(fields["ENTITY_TYPE"]).lower()
        try:
            owner = int(fields["ENTITY_ID"])
        except ValueError:
            raise MethodError("OWNER_NOT_FOUND", "Owner of the element not found") from None
        if entity not in ("lead", "deal", "contact") or owner not in self.portal.table(entity):
            raise MethodError("OWNER_NOT_FOUND", "Owner of the element not found")
        comment_id = self.portal.new_id()
        self.portal.comments[comment_id] = {
            **fields,
            "ID": comment_id,
            "ENTITY_TYPE": entity,
            "ENTITY_ID": owner,
        }
        return comment_id

    def comment_list(self, params: dict[str, Any]) -> _ListPage:
        filter_ = params.get("filter") or {}
        if not isinstance(filter_, dict) or not filter_.get("ENTITY_ID") or not filter_.get("ENTITY_TYPE"):
            raise MethodError("", "ENTITY_ID and ENTITY_TYPE are required in filter")
        rows = [
            c
            for c in self.portal.comments.values()
            if c["ENTITY_TYPE"] == str(filter_["ENTITY_TYPE"]).lower()
            and str(c["ENTITY_ID"]) == str(filter_["ENTITY_ID"])
        ]
        rows.sort(
            key=lambda c: c["ID"], reverse=str((params.get("order") or {}).get("ID", "")).upper() == "DESC"
        )
        select = params.get("select") or ["ID", "ENTITY_ID", "ENTITY_TYPE", "COMMENT"]
        shown = [{name: str(row.get(name)) for name in select} for row in rows[:50]]
        return _ListPage(shown, len(rows), 50 if len(rows) > 50 else None)

    def item_pin(self, params: dict[str, Any]) -> None:
        try:
            item_id = int(params.get("id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise MethodError("100", "Required fields are missing") from None
        if item_id not in self.portal.comments:
            raise MethodError("NOT_FOUND", "Not found.")
        self.portal.pinned.add(item_id)
        return None

    def todo_add(self, params: dict[str, Any]) -> dict[str, int]:
        for name in ("ownerTypeId", "ownerId", "deadline"):
            if params.get(name) in (None, ""):
                raise MethodError("100", "Required fields are missing")
        entity = ENTITY_TYPES.get(int(params["ownerTypeId"]))
        try:
            owner = int(params["ownerId"])
        except ValueError:
            raise MethodError("NOT_FOUND", "Not found.") from None
        if entity is None or owner not in self.portal.table(entity):
            raise MethodError("NOT_FOUND", "Not found.")
        try:
            deadline = datetime.fromisoformat(str(params["deadline"]))
        except ValueError:
            raise MethodError("WRONG_DATETIME_FORMAT", "Incorrect date format") from None
        responsible = params.get("responsibleId")
        if responsible not in (None, "") and int(responsible) not in self.portal.users:
            raise MethodError("ACCESS_DENIED", "Responsible user not found")
        activity_id = self.portal.new_id()
        self.portal.activities[activity_id] = {
            "ID": activity_id,
            "OWNER_TYPE_ID": int(params["ownerTypeId"]),
            "OWNER_ID": owner,
            "DEADLINE": deadline.isoformat(),
            "TITLE": params.get("title", ""),
            "DESCRIPTION": params.get("description", ""),
            "RESPONSIBLE_ID": int(responsible) if responsible not in (None, "") else self.user_id,
        }
        return {"id": activity_id}

    # helpers for tests ---------------------------------------------------

    def records_with_origin(self, origin_id: str) -> list[tuple[str, int]]:
        found = []
        for entity in ("lead", "deal"):
            for record_id, record in self.portal.table(entity).items():
                if str(record.get("ORIGIN_ID")) == origin_id:
                    found.append((entity, record_id))
        return found

    def comments_on(self, entity: str, record_id: int) -> list[dict[str, Any]]:
        return [
            c
            for c in self.portal.comments.values()
            if c["ENTITY_TYPE"] == entity and c["ENTITY_ID"] == record_id
        ]


@dataclass
class _ListPage:
    items: list[dict[str, Any]]
    total: int
    next: int | None


def _as_stored(value: Any) -> Any:
    """Bitrix24 hands scalar field values back as strings, whatever type went in."""
    if isinstance(value, list):
        return [_as_stored(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_stored(v) for k, v in value.items()}
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _select(record: dict[str, Any], select: list[str]) -> dict[str, Any]:
    if "*" in select:
        return {k: v for k, v in record.items() if not k.startswith("_") and k not in MULTI_FIELDS}
    return {name: record.get(name) for name in select}


def _matches(record: dict[str, Any], filter_: dict[str, Any]) -> bool:
    for raw_key, expected in filter_.items():
        match = re.match(r"^(>=|<=|!@|!=|=|@|>|<|!)?(.+)$", raw_key)
        assert match
        op, name = match.group(1) or "=", match.group(2)
        actual = record.get(name)
        if op in ("@", "!@"):
            values = expected if isinstance(expected, list) else [expected]
            inside = str(actual) in {str(v) for v in values}
            if inside != (op == "@"):
                return False
        elif op in ("!", "!="):
            if str(actual) == str(expected):
                return False
        elif op == "=":
            if isinstance(expected, list):
                if str(actual) not in {str(v) for v in expected}:
                    return False
            elif str(actual if actual is not None else "") != str(expected):
                return False
        else:
            try:
                a, b = float(actual), float(expected)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return False
            if not {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]:
                return False
    return True


_REF = re.compile(r"\$result\[([^\]]+)\]((?:\[[^\]]*\])*)")


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    """``$result[key][field][0]`` → the earlier command's value (empty when it has none)."""
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    if not isinstance(value, str) or "$result[" not in value:
        return value

    def resolve(match: re.Match[str]) -> str:
        node: Any = results.get(match.group(1))
        for part in re.findall(r"\[([^\]]*)\]", match.group(2)):
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                node = None
        return "" if node is None or isinstance(node, (dict, list)) else str(node)

    return _REF.sub(resolve, value)


def _references(value: Any) -> list[str]:
    """The command keys a parameter tree refers to with ``$result[key]``."""
    if isinstance(value, dict):
        return [ref for v in value.values() for ref in _references(v)]
    if isinstance(value, list):
        return [ref for v in value for ref in _references(v)]
    if isinstance(value, str):
        return [match.group(1) for match in _REF.finditer(value)]
    return []


def _time_block(started: float) -> dict[str, Any]:
    finished = time.time()
    return {
        "start": started,
        "finish": finished,
        "duration": finished - started,
        "processing": finished - started,
        "date_start": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "date_finish": datetime.fromtimestamp(finished, UTC).isoformat(timespec="seconds"),
        "operating_reset_at": int(started) + 600,
        "operating": 0,
    }


def _entity_methods() -> dict[str, Any]:
    methods: dict[str, Any] = {
        "profile": Bitrix24Portal.profile,
        "scope": Bitrix24Portal.scope,
        "crm.settings.mode.get": Bitrix24Portal.mode_get,
        "crm.duplicate.findbycomm": Bitrix24Portal.findbycomm,
        "crm.timeline.comment.add": Bitrix24Portal.comment_add,
        "crm.timeline.comment.list": Bitrix24Portal.comment_list,
        "crm.timeline.item.pin": Bitrix24Portal.item_pin,
        "crm.activity.todo.add": Bitrix24Portal.todo_add,
    }
    for entity in ("lead", "contact", "deal"):
        methods[f"crm.{entity}.add"] = lambda self, p, e=entity: self._add(e, p)
        methods[f"crm.{entity}.get"] = lambda self, p, e=entity: self._get(e, p)
        methods[f"crm.{entity}.update"] = lambda self, p, e=entity: self._update(e, p)
        methods[f"crm.{entity}.list"] = lambda self, p, e=entity: self._list(e, p)
        methods[f"crm.{entity}.delete"] = lambda self, p, e=entity: self._delete(e, p)
    return methods


_METHODS = _entity_methods()
