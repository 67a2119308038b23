"""amoCRM API v4 client with a long-lived token (https://<subdomain>.amocrm.ru/api/v4/...).

Only the calls leadflow makes: contacts by phone (``GET /contacts?query=``), leads with their
contact in one request (``POST /leads/complex``, up to 50 a request) or into «Неразобранное»
(``POST /leads/unsorted/forms``), tasks, a lead by id or by our lead id, ``PATCH /leads/{id}``
and notes. Lists answer 204 with no body when nothing matches: that is "none", not an error.

Every request asks the account's shared request budget first (amoCRM allows 7 requests a second
per account, for every function together). Answers sorted for the queue:
- 429 (too many requests) and 403 (amoCRM's answer to an integration it throttles, or an IP it
  has blocked): the budget is drained and the work is retried through the queue;
- 5xx, timeouts, connection errors: retried; a create whose answer was lost is looked up by our
  lead id on the redelivery, never blindly sent again;
- 401 (token expired or revoked), 402 (account not paid), 400 validation errors: not retried,
  the reason goes to the people who can fix it.
The token never reaches a log line or an exception message; phones neither.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from leadflow.adapters.rate_limit import RateLimited, RateLimiter

log = logging.getLogger(__name__)

MAX_COMPLEX_LEADS = 50  # "at most 50 leads per request"
MAX_PAGE = 250


class AmoCrmError(Exception):
    """A request that failed as a whole; ``invalid`` lists the request_ids a 400 named."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        invalid: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.invalid = invalid or {}


@dataclass
class Created:
    lead_id: int
    contact_id: int | None = None
    request_id: str | None = None
    uid: str | None = None  # «Неразобранное»: the item's uid (our source_uid)


@dataclass
class Contact:
    id: int
    phones: list[str] = field(default_factory=list)


def digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def same_phone(a: str, b: str) -> bool:
    """Phones as typed in amoCRM are free text: «8 (913) 000-00-01» is +79130000001."""
    da, db = digits(a), digits(b)
    return len(da) >= 10 and len(db) >= 10 and da[-10:] == db[-10:]


def _problem(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    return str(body.get("detail") or body.get("title") or body.get("hint") or "")[:200]


def _validation(body: Any) -> dict[str, str]:
    """``validation-errors`` → {request_id: "path: detail; …"}."""
    found: dict[str, str] = {}
    items = body.get("validation-errors") if isinstance(body, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        listed = item.get("errors")
        errors = listed if isinstance(listed, list) else []
        text = "; ".join(
            f"{e.get('path', '')}: {e.get('detail', e.get('code', ''))}"
            for e in errors
            if isinstance(e, dict)
        )
        found[str(item.get("request_id", ""))] = text[:300] or "validation failed"
    return found


class AmoCrmClient:
    """The session and the request budget come from the caller (``leadflow.wiring``)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        session: requests.Session,
        limiter: RateLimiter,
        *,
        timeout_s: float = 10,
    ):
        if not base_url or not token:
            raise ValueError("base_url and token are required")
        self._base = base_url.rstrip("/") + "/api/v4/"
        self._token = token
        self._session = session
        self.limiter = limiter
        self.timeout_s = timeout_s
        self.requests_sent = 0

    # ------------------------------------------------------------------ transport
    def request(self, method: str, path: str, *, params: Any = None, body: Any = None, what: str) -> Any:
        """One HTTP request; the decoded body (None for 204), or AmoCrmError."""
        try:
            self.limiter.acquire()
        except RateLimited as exc:
            raise AmoCrmError(f"{what}: {exc.description}", retryable=True) from None
        self.requests_sent += 1
        try:
            response = self._session.request(
                method,
                self._base + path,
                params=params,
                json=body,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self.timeout_s,
            )
        except requests.Timeout:
            raise AmoCrmError(f"{what}: no answer in {self.timeout_s}s", retryable=True) from None
        except requests.RequestException as exc:
            raise AmoCrmError(f"{what}: {type(exc).__name__}", retryable=True) from None
        status = response.status_code
        if status == 204:
            return None
        try:
            decoded = response.json()
        except ValueError:
            decoded = None  # 429 and gateway errors may come as HTML
        if 200 <= status < 300:
            return decoded
        detail = _problem(decoded)
        log.warning("amocrm %s failed: status=%s", what, status)
        if status in (429, 403):
            self.limiter.drain()
            reason = "too many requests" if status == 429 else "access forbidden (throttled or IP blocked)"
            raise AmoCrmError(f"{what}: {status} {reason} {detail}".strip(), retryable=True, status=status)
        if status == 401:
            raise AmoCrmError(
                f"{what}: 401 amoCRM не принял токен (истёк или отозван): выпустите новый "
                "долгосрочный токен и сохраните его в AMOCRM_TOKEN",
                retryable=False,
                status=status,
            )
        if status == 402:
            raise AmoCrmError(f"{what}: 402 аккаунт amoCRM не оплачен", retryable=False, status=status)
        raise AmoCrmError(
            f"{what}: {status} {detail}".strip(),
            retryable=status >= 500,
            status=status,
            invalid=_validation(decoded) if status == 400 else None,
        )

    @staticmethod
    def _embedded(body: Any, key: str) -> list[dict[str, Any]]:
        embedded = body.get("_embedded") if isinstance(body, dict) else None
        items = embedded.get(key) if isinstance(embedded, dict) else None
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    # ------------------------------------------------------------------ reads
    def contacts_with_phone(self, phone: str) -> list[Contact]:
        """Contacts whose phone field holds this number (the search is full text: checked here)."""
        body = self.request(
            "GET", "contacts", params={"query": digits(phone)[-10:], "limit": MAX_PAGE}, what="contacts"
        )
        found: list[Contact] = []
        for item in self._embedded(body, "contacts"):
            phones = [
                str(value.get("value") or "")
                for fields in item.get("custom_fields_values") or []
                if isinstance(fields, dict) and fields.get("field_code") == "PHONE"
                for value in fields.get("values") or []
                if isinstance(value, dict)
            ]
            if any(same_phone(p, phone) for p in phones):
                found.append(Contact(int(item["id"]), phones))
        return found

    def leads_named(self, marker: str) -> list[dict[str, Any]]:
        """Leads whose name carries ``marker`` as a word (our lead id)."""
        body = self.request("GET", "leads", params={"query": marker, "limit": MAX_PAGE}, what="leads")
        return [lead for lead in self._embedded(body, "leads") if marker in str(lead.get("name", "")).split()]

    def unsorted(self, uid: str) -> dict[str, Any] | None:
        body = self.request("GET", f"leads/unsorted/{uid}", what="unsorted")
        return body if isinstance(body, dict) else None

    def lead(self, lead_id: int | str, *, with_contacts: bool = False) -> dict[str, Any] | None:
        """The lead; ``with_contacts``: its linked contacts too (``_embedded.contacts``: id, is_main)."""
        params = {"with": "contacts"} if with_contacts else None
        try:
            body = self.request("GET", f"leads/{lead_id}", params=params, what="lead")
        except AmoCrmError as exc:
            if exc.status == 404:
                return None
            raise
        return body if isinstance(body, dict) else None

    def contact(self, contact_id: int | str) -> dict[str, Any] | None:
        try:
            body = self.request("GET", f"contacts/{contact_id}", what="contact")
        except AmoCrmError as exc:
            if exc.status == 404:
                return None
            raise
        return body if isinstance(body, dict) else None

    def update_contact(self, contact_id: int | str, fields: dict[str, Any]) -> None:
        """PATCH: a multi-value field (PHONE) is replaced by the values sent — send them all."""
        self.request("PATCH", f"contacts/{contact_id}", body=fields, what="contacts/update")

    def tasks_of(self, lead_id: int) -> list[dict[str, Any]]:
        body = self.request(
            "GET",
            "tasks",
            params={"filter[entity_type]": "leads", "filter[entity_id]": str(lead_id)},
            what="tasks",
        )
        return self._embedded(body, "tasks")

    # ------------------------------------------------------------------ writes
    def add_complex(self, leads: list[dict[str, Any]]) -> list[Created]:
        """Leads with their contact (new, or an existing one by id); one Created per lead, in order."""
        if len(leads) > MAX_COMPLEX_LEADS:
            raise ValueError(f"at most {MAX_COMPLEX_LEADS} leads per request, got {len(leads)}")
        body = self.request("POST", "leads/complex", body=leads, what="leads/complex")
        rows = body if isinstance(body, list) else []
        if len(rows) != len(leads):
            raise AmoCrmError(f"leads/complex: {len(rows)} answers for {len(leads)} leads", retryable=True)
        out = []
        for row in rows:
            request_ids = row.get("request_id")
            rid = request_ids[0] if isinstance(request_ids, list) and request_ids else request_ids
            contact = row.get("contact_id")
            out.append(Created(int(row["id"]), int(contact) if contact else None, str(rid) if rid else None))
        return out

    def add_unsorted(self, items: list[dict[str, Any]]) -> list[Created]:
        body = self.request("POST", "leads/unsorted/forms", body=items, what="leads/unsorted/forms")
        rows = self._embedded(body, "unsorted")
        if len(rows) != len(items):
            raise AmoCrmError(f"unsorted/forms: {len(rows)} answers for {len(items)}", retryable=True)
        return [self.created_from_unsorted(row) for row in rows]

    @classmethod
    def created_from_unsorted(cls, row: Mapping[str, Any]) -> Created:
        leads = cls._embedded(row, "leads")
        contacts = cls._embedded(row, "contacts")
        return Created(
            int(leads[0]["id"]) if leads else 0,
            int(contacts[0]["id"]) if contacts else None,
            uid=str(row.get("uid") or ""),
        )

    def add_tasks(self, tasks: list[dict[str, Any]]) -> int:
        body = self.request("POST", "tasks", body=tasks, what="tasks")
        return len(self._embedded(body, "tasks"))

    def update_lead(self, lead_id: int | str, fields: dict[str, Any]) -> None:
        self.request("PATCH", f"leads/{lead_id}", body=fields, what="leads/update")

    def add_note(self, lead_id: int | str, text: str) -> None:
        self.request(
            "POST",
            f"leads/{lead_id}/notes",
            body=[{"note_type": "common", "params": {"text": text}}],
            what="leads/notes",
        )
