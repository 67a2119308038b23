"""An in-memory amoCRM account behind API v4 with a long-lived token, on 127.0.0.1.

``with AmoCrmAccount() as amo:`` → ``amo.base_url`` (the account's address), ``amo.token``.

- Success bodies are HAL (``application/hal+json``): lists as ``{"_page", "_links",
  "_embedded": {"leads"|"contacts"|"tasks": […]}}``; an empty list is **204 with no body**.
  ``POST /leads/complex`` answers a flat array ``[{"id", "contact_id", "company_id",
  "request_id": [..], "merged": false}]``; ``POST /leads/unsorted/forms`` answers
  ``{"_total_items", "_embedded": {"unsorted": [{"uid", "_embedded": {"leads": [{"id"}],
  "contacts": [{"id"}]}}]}}``.
- Errors are ``application/problem+json``: 401 (wrong token), 400 with ``validation-errors``
  (``[{"request_id", "errors": [{"code", "path", "detail"}]}]``: unknown field codes, unknown
  users, unknown stages, unknown contact ids, more than 50 leads), 403 when the account blocks
  the integration (``blocked = True``), 429 when more than ``rate_per_s`` requests (7) arrive in
  one calendar second — counted, as ``violations``, since a client with a shared budget must never cause it.
- ``GET /contacts?query=`` and ``GET /leads?query=`` search the text of names and field values
  (digits of a phone query match the digits of a stored phone).
- Faults: ``fail_next(status, body, after=)`` and ``lose_next_answer(after=)`` (carried out, the
  answer arrives after the client gave up).
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import deque
from typing import Any

from tests.fakes.http import FakeServer, Request, Response

TOKEN = "amo-long-lived-token"
HAL = {"Content-Type": "application/hal+json"}
PROBLEM = {"Content-Type": "application/problem+json"}
TRACKING_CODES = {"UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM", "UTM_REFERRER"}
PIPELINE = 7000001
FIRST_STAGE, SECOND_STAGE = 7100001, 7100002


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {
        "title": title,
        "type": f"https://httpstatus.es/{status}",
        "status": status,
        "detail": detail,
    } | extra
    return Response(status, body, headers=PROBLEM)


class Invalid(Exception):
    def __init__(self, request_id: str, path: str, detail: str, code: str = "NotSupportedChoice"):
        super().__init__(detail)
        self.item = {"request_id": request_id, "errors": [{"code": code, "path": path, "detail": detail}]}


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


class AmoCrmAccount:
    def __init__(self, *, subdomain: str = "salon", users: tuple[int, ...] = (111, 222), rate_per_s: int = 7):
        self.subdomain = subdomain
        self.account_id = 29000001
        self.token = TOKEN
        self.users = set(users)
        self.rate_per_s = rate_per_s
        self.stages = {PIPELINE: {FIRST_STAGE, SECOND_STAGE, 142, 143}}
        self.leads: dict[int, dict[str, Any]] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.unsorted_items: dict[str, dict[str, Any]] = {}
        self.tasks: list[dict[str, Any]] = []
        self.notes: list[dict[str, Any]] = []
        self.blocked = False
        self.violations: list[str] = []
        self.calls: list[tuple[str, str]] = []  # (method, path) of every authorised request
        self._ids = itertools.count(30_000_001)
        self._recent: deque[int] = deque()
        self._faults: deque[tuple[int, Any] | str | None] = deque()
        self._lock = threading.RLock()
        self._server = FakeServer(self.route)

    # ------------------------------------------------------------------ test controls
    def __enter__(self) -> AmoCrmAccount:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    @property
    def base_url(self) -> str:
        return self._server.url

    def fail_next(self, status: int, body: Any = None, *, after: int = 0) -> None:
        self._faults.extend([None] * after + [(status, body)])

    def lose_next_answer(self, *, after: int = 0) -> None:
        self._faults.extend([None] * after + ["lose"])

    def add_contact(self, name: str, phone: str) -> int:
        with self._lock:
            contact_id = next(self._ids)
            self.contacts[contact_id] = {
                "id": contact_id, "name": name,
                "custom_fields_values": [{"field_id": 1, "field_code": "PHONE",
                                          "values": [{"value": phone, "enum_code": "WORK"}]}],
                "leads": [],
            }  # fmt: skip
            return contact_id

    def accept(self, uid: str) -> None:
        """A person accepts an item of «Неразобранное»: it leaves the list, its lead moves on."""
        with self._lock:
            item = self.unsorted_items.pop(uid)
            self.leads[item["_embedded"]["leads"][0]["id"]]["status_id"] = FIRST_STAGE

    def leads_of_contact(self, contact_id: int) -> list[int]:
        return [i for i, lead in self.leads.items() if lead["contact_id"] == contact_id]

    def leads_named_with(self, marker: str) -> list[dict[str, Any]]:
        return [lead for lead in self.leads.values() if marker in lead["name"].split()]

    # ------------------------------------------------------------------ the wire
    def route(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return problem(401, "Unauthorized", "Unauthorized")
        second = int(time.time())  # amoCRM counts requests per second
        with self._lock:
            while self._recent and self._recent[0] < second:
                self._recent.popleft()
            if len(self._recent) >= self.rate_per_s:
                self.violations.append(f"more than {self.rate_per_s} requests in a second")
                return Response(429, "Too Many Requests", headers={"Content-Type": "text/html"})
            self._recent.append(second)
            if self.blocked:
                return problem(403, "Forbidden", "Access to the account is blocked")
            self.calls.append((request.method, request.path))
            fault = self._faults.popleft() if self._faults else None
            if isinstance(fault, tuple):
                status, body = fault
                return Response(status, body if body is not None else "", headers=PROBLEM if body else {})
            try:
                answer = self._dispatch(request)
            except Invalid as exc:
                answer = problem(
                    400, "Bad Request", "Request validation failed", **{"validation-errors": [exc.item]}
                )
        if fault == "lose":
            answer.delay_s = 3
        return answer

    def _dispatch(self, request: Request) -> Response:
        path = request.path.removeprefix("/api/v4/")
        method = request.method
        query = request.query
        if method == "GET" and path == "contacts":
            return self._list(
                "contacts", [c for c in self.contacts.values() if self._matches(c, query.get("query", ""))]
            )
        if method == "GET" and path == "leads":
            return self._list(
                "leads",
                [self._lead_out(x) for x in self.leads.values() if self._matches(x, query.get("query", ""))],
            )
        if method == "GET" and path == "account":
            body = {"id": self.account_id, "name": "Салон «Лайм»", "subdomain": self.subdomain,
                    "country": "RU", "currency": "RUB", "_links": {"self": {"href": f"{self.base_url}/api/v4/account"}}}  # fmt: skip
            return Response(200, body, headers=HAL)
        if method == "POST" and path == "leads/complex":
            return self._complex(request.json())
        if method == "POST" and path == "leads/unsorted/forms":
            return self._unsorted(request.json())
        if method == "GET" and path.startswith("leads/unsorted/"):
            item = self.unsorted_items.get(path.removeprefix("leads/unsorted/"))
            return Response(200, item, headers=HAL) if item else Response(204)
        if method == "POST" and path == "tasks":
            return self._add_tasks(request.json())
        if method == "GET" and path == "tasks":
            entity = query.get("filter[entity_id]")
            found = [
                t
                for t in self.tasks
                if str(t["entity_id"]) == entity and t["entity_type"] == query.get("filter[entity_type]")
            ]
            return self._list("tasks", found)
        match = re.fullmatch(r"contacts/(\d+)", path)
        if match:
            contact = self.contacts.get(int(match.group(1)))
            if contact is None:
                return Response(204)
            if method == "GET":
                return Response(200, {k: v for k, v in contact.items() if k != "leads"}, headers=HAL)
            if method == "PATCH":
                return self._patch_contact(contact, request.json())
        match = re.fullmatch(r"leads/(\d+)(/notes)?", path)
        if match:
            lead = self.leads.get(int(match.group(1)))
            if lead is None:
                return Response(204)
            if match.group(2) and method == "POST":
                for note in request.json():
                    self.notes.append({"entity_id": lead["id"], **note})
                return Response(200, {"_embedded": {"notes": [{"id": next(self._ids)}]}}, headers=HAL)
            if method == "GET":
                return Response(
                    200, self._lead_out(lead, with_contacts=query.get("with") == "contacts"), headers=HAL
                )
            if method == "PATCH":
                return self._patch(lead, request.json())
        return problem(404, "Not Found", "Method not found")

    # ------------------------------------------------------------------ behaviour
    @staticmethod
    def _texts(entity: dict[str, Any]) -> list[str]:
        texts = [str(entity.get("name", ""))]
        for field in entity.get("custom_fields_values") or []:
            texts += [str(v.get("value", "")) for v in field.get("values") or []]
        return texts

    def _matches(self, entity: dict[str, Any], query: str) -> bool:
        if not query:
            return True
        texts = self._texts(entity)
        if query.isdigit():
            return any(query in _digits(t) for t in texts if _digits(t))
        return any(query.casefold() in t.casefold() for t in texts)

    def _list(self, key: str, items: list[dict[str, Any]]) -> Response:
        if not items:
            return Response(204)
        body = {
            "_page": 1,
            "_links": {"self": {"href": f"{self.base_url}/api/v4/{key}"}},
            "_embedded": {key: items},
        }
        return Response(200, body, headers=HAL)

    def _lead_out(self, lead: dict[str, Any], *, with_contacts: bool = False) -> dict[str, Any]:
        out = {k: v for k, v in lead.items() if k != "contact_id"}
        if not with_contacts:  # amoCRM embeds a lead's contacts only when asked (?with=contacts)
            out["_embedded"] = {k: v for k, v in lead["_embedded"].items() if k != "contacts"}
        out["_links"] = {"self": {"href": f"{self.base_url}/api/v4/leads/{lead['id']}"}}
        return out

    def _check_lead(self, rid: str, lead: dict[str, Any], where: str = "") -> None:
        if not isinstance(lead.get("name", ""), str):
            raise Invalid(rid, f"{where}name", "This value should be of type string.", "InvalidType")
        user = lead.get("responsible_user_id")
        if user is not None and user not in self.users:
            raise Invalid(rid, f"{where}responsible_user_id", "User not found", "NotFound")
        pipeline = lead.get("pipeline_id", PIPELINE)
        if pipeline not in self.stages:
            raise Invalid(rid, f"{where}pipeline_id", "Pipeline not found", "NotFound")
        if "status_id" in lead and lead["status_id"] not in self.stages[pipeline]:
            raise Invalid(rid, f"{where}status_id", "Status not found", "NotFound")
        for n, field in enumerate(lead.get("custom_fields_values") or []):
            if field.get("field_code") not in TRACKING_CODES:
                raise Invalid(
                    rid,
                    f"{where}custom_fields_values.{n}.field_code",
                    "The value you selected is not a valid choice.",
                )

    def _new_lead(self, lead: dict[str, Any], contact_id: int | None) -> int:
        lead_id = next(self._ids)
        self.leads[lead_id] = {
            "id": lead_id, "name": lead.get("name", f"Сделка #{lead_id}"), "price": lead.get("price", 0),
            "responsible_user_id": lead.get("responsible_user_id", min(self.users)),
            "pipeline_id": lead.get("pipeline_id", PIPELINE), "status_id": lead.get("status_id", FIRST_STAGE),
            "custom_fields_values": lead.get("custom_fields_values"), "created_at": int(time.time()),
            "_embedded": {"tags": [{"id": n, "name": t["name"]} for n, t in enumerate(lead.get("_embedded", {}).get("tags", []))],
                          "contacts": [{"id": contact_id, "is_main": True}] if contact_id else []},
            "contact_id": contact_id,
        }  # fmt: skip
        return lead_id

    def _contact_for(self, rid: str, contact: dict[str, Any] | None) -> int | None:
        if not contact:
            return None
        if "id" in contact:
            if contact["id"] not in self.contacts:
                raise Invalid(rid, "_embedded.contacts.0.id", "Contact not found", "NotFound")
            return int(contact["id"])
        for n, field in enumerate(contact.get("custom_fields_values") or []):
            if field.get("field_code") not in ("PHONE", "EMAIL"):
                raise Invalid(
                    rid,
                    f"_embedded.contacts.0.custom_fields_values.{n}.field_code",
                    "The value you selected is not a valid choice.",
                )
        contact_id = next(self._ids)
        self.contacts[contact_id] = {"id": contact_id, "name": contact.get("name", ""),
                                     "custom_fields_values": contact.get("custom_fields_values") or []}  # fmt: skip
        return contact_id

    def _complex(self, body: Any) -> Response:
        if not isinstance(body, list) or not body:
            raise Invalid("0", "", "This value should not be blank.", "NotBlank")
        if len(body) > 50:
            self.violations.append("more than 50 leads in leads/complex")
            raise Invalid("0", "", "This collection should contain 50 elements or less.", "TooMany")
        for n, lead in enumerate(body):  # validated first: a refused request creates nothing
            rid = str(lead.get("request_id", n))
            self._check_lead(rid, lead)
            contacts = lead.get("_embedded", {}).get("contacts") or []
            if contacts and "id" in contacts[0] and contacts[0]["id"] not in self.contacts:
                raise Invalid(rid, "_embedded.contacts.0.id", "Contact not found", "NotFound")
        out = []
        for n, lead in enumerate(body):
            rid = str(lead.get("request_id", n))
            contacts = lead.get("_embedded", {}).get("contacts") or []
            contact_id = self._contact_for(rid, contacts[0] if contacts else None)
            lead_id = self._new_lead(lead, contact_id)
            out.append(
                {
                    "id": lead_id,
                    "contact_id": contact_id,
                    "company_id": None,
                    "request_id": [rid],
                    "merged": False,
                }
            )
        return Response(200, out, headers=HAL)

    def _unsorted(self, body: Any) -> Response:
        if not isinstance(body, list) or not body:
            raise Invalid("0", "", "This value should not be blank.", "NotBlank")
        for n, item in enumerate(body):
            rid = str(n)
            for key in ("source_uid", "source_name"):
                if not item.get(key):
                    raise Invalid(rid, key, "This value should not be blank.", "NotBlank")
            if item["source_uid"] in self.unsorted_items:
                raise Invalid(rid, "source_uid", "Unsorted with this uid already exists", "Duplicate")
            metadata = item.get("metadata") or {}
            for key in ("form_id", "form_name", "form_page", "form_sent_at"):
                if key not in metadata:
                    raise Invalid(rid, f"metadata.{key}", "This field is missing.", "MissingField")
            leads = item.get("_embedded", {}).get("leads") or [{}]
            self._check_lead(rid, leads[0], "_embedded.leads.0.")
        created = []
        for n, item in enumerate(body):
            rid = str(n)
            contacts = item.get("_embedded", {}).get("contacts") or []
            contact_id = self._contact_for(rid, contacts[0] if contacts else None)
            lead = (item.get("_embedded", {}).get("leads") or [{}])[0] | {
                "pipeline_id": item.get("pipeline_id", PIPELINE)
            }
            lead_id = self._new_lead(lead, contact_id)
            self.leads[lead_id]["status_id"] = "unsorted"
            uid = item["source_uid"]
            self.unsorted_items[uid] = {
                "uid": uid, "source_uid": uid, "source_name": item["source_name"], "category": "forms",
                "pipeline_id": lead["pipeline_id"], "account_id": self.account_id, "request_id": rid,
                "metadata": item["metadata"],
                "_embedded": {"leads": [{"id": lead_id}], "contacts": [{"id": contact_id}] if contact_id else [],
                              "companies": []},
            }  # fmt: skip
            created.append(self.unsorted_items[uid])
        return Response(200, {"_total_items": len(created), "_embedded": {"unsorted": created}}, headers=HAL)

    def _add_tasks(self, body: Any) -> Response:
        out = []
        for n, task in enumerate(body):
            rid = str(task.get("request_id", n))
            if not isinstance(task.get("complete_till"), int):
                raise Invalid(rid, "complete_till", "This value should not be blank.", "NotBlank")
            if task.get("entity_type") != "leads" or task.get("entity_id") not in self.leads:
                raise Invalid(rid, "entity_id", "Entity not found", "NotFound")
            if task.get("responsible_user_id", min(self.users)) not in self.users:
                raise Invalid(rid, "responsible_user_id", "User not found", "NotFound")
        for task in body:
            task_id = next(self._ids)
            self.tasks.append({"id": task_id, **task})
            out.append({"id": task_id, "request_id": task.get("request_id")})
        return Response(200, {"_embedded": {"tasks": out}}, headers=HAL)

    def _patch(self, lead: dict[str, Any], body: dict[str, Any]) -> Response:
        rid = "0"
        if "status_id" in body:
            status = body["status_id"]
            if status in (142, 143) and "pipeline_id" not in body:
                raise Invalid(rid, "pipeline_id", "Pipeline is required for closing statuses", "NotBlank")
            pipeline = body.get("pipeline_id", lead["pipeline_id"])
            if status not in self.stages.get(pipeline, set()):
                raise Invalid(rid, "status_id", "Status not found", "NotFound")
        if "responsible_user_id" in body and body["responsible_user_id"] not in self.users:
            raise Invalid(rid, "responsible_user_id", "User not found", "NotFound")
        lead.update(
            {
                k: v
                for k, v in body.items()
                if k in ("status_id", "pipeline_id", "responsible_user_id", "name")
            }
        )
        return Response(200, {"id": lead["id"], "updated_at": int(time.time())}, headers=HAL)

    def _patch_contact(self, contact: dict[str, Any], body: dict[str, Any]) -> Response:
        """A field sent replaces that field's values (amoCRM's PATCH); fields not sent stay."""
        for n, field in enumerate(body.get("custom_fields_values") or []):
            if field.get("field_code") not in ("PHONE", "EMAIL"):
                raise Invalid(
                    "0",
                    f"custom_fields_values.{n}.field_code",
                    "The value you selected is not a valid choice.",
                )
        if "name" in body:
            contact["name"] = body["name"]
        sent = {f.get("field_code"): f for f in body.get("custom_fields_values") or []}
        kept = [f for f in contact.get("custom_fields_values") or [] if f.get("field_code") not in sent]
        contact["custom_fields_values"] = kept + list(sent.values())
        return Response(200, {"id": contact["id"], "updated_at": int(time.time())}, headers=HAL)

    # ------------------------------------------------------------------ webhooks amoCRM sends
    def status_webhook(self, lead_id: int, status_id: int, old_status_id: int = FIRST_STAGE) -> str:
        """The form-encoded body amoCRM posts when a person moves a lead to another stage."""
        from urllib.parse import urlencode

        now = int(time.time())
        return urlencode({
            "leads[status][0][id]": lead_id, "leads[status][0][status_id]": status_id,
            "leads[status][0][old_status_id]": old_status_id, "leads[status][0][pipeline_id]": PIPELINE,
            "leads[status][0][last_modified]": now, "leads[status][0][updated_at]": now,
            "account[subdomain]": self.subdomain, "account[id]": self.account_id,
            "account[_links][self]": f"https://{self.subdomain}.amocrm.ru",
        })  # fmt: skip
