"""Bitrix24 CRM client over an inbound webhook (https://PORTAL/rest/USER_ID/CODE/).

A ``push()`` is a *lookup* ``batch`` (CRM mode once, ``crm.duplicate.findbycomm`` per distinct
phone, and one ``*.list`` by ORIGINATOR_ID/ORIGIN_ID for up to 50 leads) and *write* batches
(adds, comments for duplicates, call-back tasks that point at the new record through
``$result[addN]``), each packed to the portal's 50 commands. A route batch whose writes fit 50
commands costs two HTTP requests: up to 50 leads in classic mode without call-backs, 25 with,
25 new clients in simple mode (BITRIX24.md counts the commands).

Idempotency: every record carries ORIGINATOR_ID (``origin_prefix``) and ORIGIN_ID (our lead
id). Whenever the lookup batch is sent it also lists records by ORIGIN_ID, so a lead that a
previous attempt already created is reported, never created again. The lookup is skipped only
when no lead has a phone, the mode is known and the push is not a retry after an unknown
outcome (``after_unknown_outcome=True``, or a write batch of this client that timed out).

The webhook URL holds the secret code and phones are personal data: neither reaches a log
line or an exception message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import requests

from leadflow.adapters.channels.toolkit import keep_url_secrets_out_of_logs
from leadflow.adapters.rate_limit import RateLimited, RateLimiter
from leadflow.domain.phones import e164_or_raw

log = logging.getLogger(__name__)

Entity = Literal["lead", "deal"]
Mode = Literal["auto", "classic", "simple"]

MAX_BATCH_COMMANDS = 50  # more and Bitrix24 refuses the batch (ERROR_BATCH_LENGTH_EXCEEDED)
# findbycomm takes up to 20 values but answers one list of ids for all of them, not which value
# matched which record: the lookup sends one phone per command (see _lookup).
MAX_FINDBYCOMM_VALUES = 20
# Our records come back from one crm.*.list page (50 rows; start=-1 asks for no paging).
MAX_LEADS_PER_LOOKUP = 50

ENTITY_TYPE_ID = {"lead": 1, "deal": 2, "contact": 3}

# System codes the docs say to retry (limits, transient server faults).
TRANSIENT_CODES = frozenset(
    {"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "INTERNAL_SERVER_ERROR", "ERROR_UNEXPECTED_ANSWER"}
)
# Per-command codes that repeat on retry: the request itself is wrong (validation, access, missing
# owner). Method validation errors also come with an empty code, so "" is here too.
PERMANENT_COMMAND_CODES = frozenset(
    {
        "",
        "100",
        "INVALID_ARG_VALUE",
        "WRONG_DATETIME_FORMAT",
        "ACCESS_DENIED",
        "NOT_FOUND",
        "OWNER_NOT_FOUND",
        "ERROR_BATCH_METHOD_NOT_ALLOWED",
        "ERROR_BATCH_LENGTH_EXCEEDED",
        "ERROR_METHOD_NOT_FOUND",
        "insufficient_scope",
    }
)

# Our lead status → lead STATUS_ID / deal STAGE_ID (default pipeline, category 0). Statuses that
# the CRM has no step for map to the nearest step before them, so the CRM never runs ahead of us.
LEAD_STATUS_IDS: dict[str, str] = {
    "new": "NEW",
    "qualifying": "NEW",
    "assigned": "NEW",
    "accepted": "IN_PROCESS",
    "booked": "PROCESSED",
    "confirmed": "PROCESSED",
    "visited": "CONVERTED",
    "no_show": "JUNK",
    "cancelled": "JUNK",
    "lost": "JUNK",
    "not_target": "JUNK",
}
DEAL_STAGE_IDS: dict[str, str] = {
    "new": "NEW",
    "qualifying": "NEW",
    "assigned": "NEW",
    "accepted": "PREPARATION",
    "booked": "EXECUTING",
    "confirmed": "EXECUTING",
    "visited": "WON",
    "no_show": "LOSE",
    "cancelled": "LOSE",
    "lost": "LOSE",
    "not_target": "APOLOGY",
}
# CRM step → our status, for steps a person moves a record to in Bitrix24. NEW and the invoice
# stages say nothing we track, so they read as None ("no change for us").
LEAD_STATUS_FROM_CRM: dict[str, str] = {
    "IN_PROCESS": "accepted",
    "PROCESSED": "booked",
    "CONVERTED": "visited",
    "JUNK": "lost",
}
DEAL_STATUS_FROM_CRM: dict[str, str] = {
    "PREPARATION": "accepted",
    "EXECUTING": "booked",
    "WON": "visited",
    "LOSE": "lost",
    "APOLOGY": "not_target",
}


class Bitrix24Error(Exception):
    """A whole request that failed. ``description`` never holds the webhook URL or a phone."""

    def __init__(self, code: str, description: str = "", *, retryable: bool, status: int | None = None):
        super().__init__(f"{code or 'ERROR'}: {description}" if description else code or "ERROR")
        self.code = code
        self.description = description
        self.retryable = retryable
        self.status = status


@dataclass
class CallbackTask:
    due: datetime
    text: str
    responsible_id: int | None = None


@dataclass
class CrmLead:
    origin_id: str
    title: str
    name: str | None = None
    phone: str | None = None  # E.164
    source_id: str | None = None
    source_description: str | None = None
    utm: dict[str, str | None] = field(default_factory=dict)
    assigned_by_id: int | None = None
    comments: str = ""
    tags: list[str] = field(default_factory=list)
    callback: CallbackTask | None = None


@dataclass
class PushOutcome:
    """One per pushed lead. ``crm_id`` set with ``error`` set: the record exists, a follow-up failed."""

    origin_id: str
    crm_id: str | None
    entity: Entity
    created: bool
    duplicate_of: str | None = None
    error: str | None = None
    retryable: bool = False


# --------------------------------------------------------------------------- wire helpers


def php_query(params: Mapping[str, Any]) -> str:
    """Encode nested params the way PHP's http_build_query does (fields[PHONE][0][VALUE]=…)."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}[{key}]", item)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        elif value is None:
            pairs.append((prefix, ""))
        elif isinstance(value, bool):
            pairs.append((prefix, "Y" if value else "N"))
        else:
            pairs.append((prefix, str(value)))

    for key, value in params.items():
        walk(str(key), value)
    return urlencode(pairs)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def _missing_person_fields(person: Mapping[str, Any], lead: CrmLead) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if lead.name and not person.get("NAME"):
        fields["NAME"] = lead.name
    phones = [e164_or_raw(str(p.get("VALUE") or "")) for p in person.get("PHONE") or []]
    if lead.phone and e164_or_raw(lead.phone) not in phones:  # «8 (913) 840-27-65» is +79138402765
        fields["PHONE"] = [{"VALUE": lead.phone, "VALUE_TYPE": "WORK"}]
    return fields


def _as_id(value: Any) -> str | None:
    if value is None or value == "" or value is False:
        return None
    if isinstance(value, dict):
        value = value.get("id", value.get("ID"))
    return str(value) if value is not None else None


def portal_key(webhook_url: str) -> str:
    """The portal a webhook belongs to (scheme and host): what its request budget is keyed by.
    The path, with the webhook's secret code, is not part of it."""
    parts = urlsplit(webhook_url)
    return f"{parts.scheme}://{parts.netloc}"


def _is_retryable_code(code: str) -> bool:
    return code not in PERMANENT_COMMAND_CODES


@dataclass
class _Found:
    """What the lookup batch learned about one chunk."""

    by_origin: dict[str, str] = field(default_factory=dict)  # origin id → record id (ours)
    by_phone: dict[str, list[str]] = field(default_factory=dict)  # phone digits → ids (lead/contact)
    commented: dict[str, str] = field(default_factory=dict)  # origin id → lead that has our comment


# --------------------------------------------------------------------------- the client


class Bitrix24Client:
    """Builds nothing itself: the HTTP session and the request budget come from the caller
    (``leadflow.wiring``), so a test can hand in its own."""

    def __init__(
        self,
        webhook_url: str,
        session: requests.Session,
        rate_limiter: RateLimiter,
        *,
        timeout_s: float = 10,
        mode: Mode = "auto",
        tags_field: str | None = None,
        origin_prefix: str = "leadflow",
        register_sonet_event: bool = True,
    ):
        if not webhook_url:
            raise ValueError("webhook_url is required")
        self._base = webhook_url.rstrip("/") + "/"
        self._session = session
        self.timeout_s = timeout_s
        self._mode: Literal["classic", "simple"] | None = None if mode == "auto" else mode
        self.tags_field = tags_field
        self.origin_prefix = origin_prefix
        self.register_sonet_event = register_sonet_event
        self.limiter = rate_limiter
        self.requests_sent = 0
        self._unknown_outcome: set[str] = set()
        keep_url_secrets_out_of_logs()

    # ------------------------------------------------------------------ transport

    def _post(self, method: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """One HTTP request. Returns the decoded body on success; raises Bitrix24Error otherwise."""
        try:
            self.limiter.acquire()
        except RateLimited as exc:
            raise Bitrix24Error(exc.code, f"{method}: {exc.description}", retryable=True) from None
        self.requests_sent += 1
        try:
            response = self._session.post(self._base + method, json=payload, timeout=self.timeout_s)
        except requests.Timeout:
            raise Bitrix24Error(
                "TIMEOUT", f"{method}: no answer in {self.timeout_s}s", retryable=True
            ) from None
        except requests.RequestException as exc:
            # str(exc) would carry the URL with the webhook's secret code.
            raise Bitrix24Error(
                "CONNECTION_ERROR", f"{method}: {type(exc).__name__}", retryable=True
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        if isinstance(body, dict) and "error" in body:
            code = str(body.get("error") or "")
            description = str(body.get("error_description") or "")
            if code == "QUERY_LIMIT_EXCEEDED":
                self.limiter.drain()
            retryable = code in TRANSIENT_CODES or status >= 500 or status == 429
            log.warning("bitrix24 %s failed: status=%s code=%s", method, status, code or "-")
            raise Bitrix24Error(code, f"{method}: {description}", retryable=retryable, status=status)
        if status >= 400 or not isinstance(body, dict) or "result" not in body:
            retryable = status >= 500 or status == 429
            log.warning("bitrix24 %s failed: status=%s (no error body)", method, status)
            raise Bitrix24Error(
                f"HTTP_{status}", f"{method}: unexpected answer", retryable=retryable, status=status
            )
        return body

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """One REST method; returns its ``result``."""
        return self._post(method, dict(params or {}))["result"]

    def batch(self, commands: Mapping[str, tuple[str, Mapping[str, Any]]]) -> tuple[dict, dict]:
        """One ``batch`` (halt=0) → (results by key, errors by key)."""
        if len(commands) > MAX_BATCH_COMMANDS:
            raise ValueError(f"batch holds at most {MAX_BATCH_COMMANDS} commands, got {len(commands)}")
        cmd = {key: f"{method}?{php_query(params)}" for key, (method, params) in commands.items()}
        result = self._post("batch", {"halt": 0, "cmd": cmd})["result"]
        # PHP serialises an empty array as [] where a filled one is an object.
        results = result.get("result") or {}
        errors = result.get("result_error") or {}
        return (results if isinstance(results, dict) else {}), (errors if isinstance(errors, dict) else {})

    # ------------------------------------------------------------------ mode

    @property
    def mode(self) -> Literal["classic", "simple"] | None:
        return self._mode

    def _set_mode(self, raw: Any) -> None:
        self._mode = "simple" if str(raw) == "2" else "classic"

    def crm_mode(self) -> Literal["classic", "simple"]:
        if self._mode is None:
            self._set_mode(self.call("crm.settings.mode.get"))
        assert self._mode is not None
        return self._mode

    # ------------------------------------------------------------------ push

    def push(self, leads: Sequence[CrmLead], *, after_unknown_outcome: bool = False) -> list[PushOutcome]:
        """Create (or comment on) one CRM record per lead; one outcome per lead, same order.

        One lookup batch serves up to 50 leads; their writes go in as few batches as the
        50-command limit allows. Raises Bitrix24Error when the first request fails as a whole;
        a later failure becomes per-lead outcomes (retryable) for the leads it left undone, so
        finished leads are not reported as lost.
        """
        outcomes: list[PushOutcome] = []
        remaining = list(leads)
        while remaining:
            group = self._next_group(remaining)
            outcomes.extend(self._push_group(group, after_unknown_outcome, first=not outcomes))
            remaining = remaining[len(group) :]
        return outcomes

    def _lookup_overhead(self) -> int:
        """Lookup commands that are not a phone: the mode (until known) and the lists of ours."""
        return 1 if self._mode is not None else 3

    def _next_group(self, leads: Sequence[CrmLead]) -> list[CrmLead]:
        """The leads one lookup batch can serve: as many distinct phones as fit beside the rest."""
        phone_slots = MAX_BATCH_COMMANDS - self._lookup_overhead()
        group: list[CrmLead] = []
        phones: set[str] = set()
        for lead in leads:
            digits = _digits(lead.phone) if lead.phone else ""
            new_phone = 1 if digits and digits not in phones else 0
            if group and (len(group) >= MAX_LEADS_PER_LOOKUP or len(phones) + new_phone > phone_slots):
                break
            group.append(lead)
            if digits:
                phones.add(digits)
        return group

    def _push_group(
        self, group: list[CrmLead], after_unknown_outcome: bool, *, first: bool
    ) -> list[PushOutcome]:
        outcomes: list[PushOutcome] = []
        try:
            retry = after_unknown_outcome or any(lead.origin_id in self._unknown_outcome for lead in group)
            needs_lookup = self._mode is None or retry or any(lead.phone for lead in group)
            found = self._lookup(group) if needs_lookup else _Found()
            mode = self.crm_mode()  # known after the lookup; a separate call only when no lookup ran
            if retry and mode == "classic":
                self._find_written_comments(group, found)
            while len(outcomes) < len(group):
                outcomes.extend(self._write(group[len(outcomes) :], found, mode))
        except Bitrix24Error as exc:
            if first and not outcomes:
                raise
            entity: Entity = "deal" if self._mode == "simple" else "lead"
            outcomes.extend(
                PushOutcome(lead.origin_id, None, entity, False, error=exc.code, retryable=exc.retryable)
                for lead in group[len(outcomes) :]
            )
        return outcomes

    def _duplicate_marker(self, lead: CrmLead) -> str:
        return f"({self.origin_prefix} {lead.origin_id})"

    def _find_written_comments(self, chunk: list[CrmLead], found: _Found) -> None:
        """On a redelivery, a duplicate's comment may already be on the lead: one more request,
        paid only then, keeps it from being written twice."""
        targets: dict[str, list[CrmLead]] = {}
        for lead in chunk:
            existing = found.by_phone.get(_digits(lead.phone)) if lead.phone else None
            if existing and lead.origin_id not in found.by_origin:
                targets.setdefault(max(existing, key=int), []).append(lead)
        if not targets:
            return
        # One command per target; targets are distinct phones of one lookup, so they fit a batch.
        commands: dict[str, tuple[str, Mapping[str, Any]]] = {
            f"seen{k}": (
                "crm.timeline.comment.list",
                {
                    "filter": {"ENTITY_ID": target, "ENTITY_TYPE": "lead"},
                    "select": ["ID", "COMMENT"],
                    "order": {"ID": "DESC"},
                },
            )
            for k, target in enumerate(targets)
        }
        results, _ = self.batch(commands)  # a failed check only risks a repeated comment
        for k, (target, leads) in enumerate(targets.items()):
            texts = [str(row.get("COMMENT") or "") for row in results.get(f"seen{k}") or []]
            for lead in leads:
                if any(self._duplicate_marker(lead) in text for text in texts):
                    found.commented[lead.origin_id] = target

    def _lookup(self, chunk: list[CrmLead]) -> _Found:
        commands: dict[str, tuple[str, Mapping[str, Any]]] = {}
        mode_known = self._mode
        if mode_known is None:
            commands["mode"] = ("crm.settings.mode.get", {})
        phone_keys: dict[str, str] = {}
        for lead in chunk:
            if not lead.phone:
                continue
            digits = _digits(lead.phone)
            if digits in phone_keys:
                continue
            key = phone_keys[digits] = f"dup{len(phone_keys)}"
            params: dict[str, Any] = {"type": "PHONE", "values": [lead.phone]}
            if mode_known is not None:
                params["entity_type"] = "LEAD" if mode_known == "classic" else "CONTACT"
            commands[key] = ("crm.duplicate.findbycomm", params)
        origin_filter = {
            "select": ["ID", "ORIGIN_ID"],
            "filter": {"ORIGINATOR_ID": self.origin_prefix, "@ORIGIN_ID": [lead.origin_id for lead in chunk]},
            "start": -1,  # no COUNT(*): the docs' advice for cheap lists
        }
        if mode_known in (None, "classic"):
            commands["own_leads"] = ("crm.lead.list", origin_filter)
        if mode_known in (None, "simple"):
            commands["own_deals"] = ("crm.deal.list", origin_filter)

        results, errors = self.batch(commands)
        if errors:
            # A lookup that did not answer must not turn into a second record: fail the chunk.
            key, error = next(iter(errors.items()))
            code = str((error or {}).get("error") or "")
            raise Bitrix24Error(code, f"lookup {key} failed", retryable=_is_retryable_code(code))
        if mode_known is None:
            self._set_mode(results.get("mode"))
        mode = self._mode
        found = _Found()
        own_key = "own_leads" if mode == "classic" else "own_deals"
        for row in results.get(own_key) or []:
            if row.get("ORIGIN_ID"):
                found.by_origin.setdefault(str(row["ORIGIN_ID"]), str(row["ID"]))
        phone_type = "LEAD" if mode == "classic" else "CONTACT"
        for digits, key in phone_keys.items():
            hit = results.get(key) or {}
            ids = hit.get(phone_type) if isinstance(hit, dict) else None
            if ids:
                found.by_phone[digits] = [str(i) for i in ids]
        return found

    def _record_fields(self, lead: CrmLead, entity: Entity) -> dict[str, Any]:
        fields: dict[str, Any] = {"TITLE": lead.title}
        if entity == "lead":
            if lead.name:
                fields["NAME"] = lead.name
            if lead.phone:
                fields["PHONE"] = [{"VALUE": lead.phone, "VALUE_TYPE": "WORK"}]
        if lead.source_id:
            fields["SOURCE_ID"] = lead.source_id
        if lead.source_description:
            fields["SOURCE_DESCRIPTION"] = lead.source_description
        for part in ("source", "medium", "campaign", "content", "term"):
            value = lead.utm.get(part)
            if value:
                fields[f"UTM_{part.upper()}"] = value
        if lead.assigned_by_id:
            fields["ASSIGNED_BY_ID"] = lead.assigned_by_id
        if lead.comments:
            fields["COMMENTS"] = lead.comments
        if self.tags_field and lead.tags:
            fields[self.tags_field] = list(lead.tags)
        fields["ORIGINATOR_ID"] = self.origin_prefix
        fields["ORIGIN_ID"] = lead.origin_id
        return fields

    def _add_params(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {
            "fields": fields,
            "params": {"REGISTER_SONET_EVENT": "Y" if self.register_sonet_event else "N"},
        }

    def _todo(self, owner_type: str, owner_id: str, task: CallbackTask) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {
            "ownerTypeId": ENTITY_TYPE_ID[owner_type],
            "ownerId": owner_id,
            "deadline": _iso(task.due),
            "title": "Перезвонить клиенту",
            "description": task.text,
        }
        if task.responsible_id:
            params["responsibleId"] = task.responsible_id
        return "crm.activity.todo.add", params

    def _duplicate_comment(self, lead: CrmLead) -> str:
        lines = [f"Повторное обращение {self._duplicate_marker(lead)}: {lead.title}"]
        if lead.comments:
            lines.append(lead.comments)
        return "\n".join(lines)

    def _plan_lead(
        self,
        i: int,
        lead: CrmLead,
        found: _Found,
        mode: Literal["classic", "simple"],
        first_in_chunk: dict[str, int],
        planned: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, tuple[str, Mapping[str, Any]]]]:
        """What to do with one lead: (plan, its batch commands keyed add{i}/contact{i}/note{i}/todo{i})."""
        plan: dict[str, Any] = {"lead": lead}
        cmds: dict[str, tuple[str, Mapping[str, Any]]] = {}
        own = found.by_origin.get(lead.origin_id)
        if own:
            plan["own"] = own  # created by an earlier attempt whose answer we never saw
            return plan, cmds
        if lead.origin_id in found.commented:
            plan["duplicate_of"] = found.commented[lead.origin_id]  # done by the lost attempt
            return plan, cmds
        digits = _digits(lead.phone) if lead.phone else ""
        existing = found.by_phone.get(digits) if digits else None
        if mode == "classic":
            target: str | None = None
            if existing:
                target = plan["duplicate_of"] = max(existing, key=int)  # the newest lead with this phone
            elif digits in first_in_chunk:
                plan["joined"] = first_in_chunk[digits]
                target = f"$result[add{first_in_chunk[digits]}]"
            if target is not None:
                cmds[f"note{i}"] = self._comment_command("lead", target, self._duplicate_comment(lead))
                if lead.callback:
                    cmds[f"todo{i}"] = self._todo("lead", target, lead.callback)
                return plan, cmds
            cmds[f"add{i}"] = ("crm.lead.add", self._add_params(self._record_fields(lead, "lead")))
        else:
            fields = self._record_fields(lead, "deal")
            if existing:
                fields["CONTACT_ID"] = max(existing, key=int)
            elif digits in first_in_chunk and f"contact{first_in_chunk[digits]}" in planned:
                fields["CONTACT_ID"] = f"$result[contact{first_in_chunk[digits]}]"
            elif lead.phone or lead.name:
                contact: dict[str, Any] = {}
                if lead.name:
                    contact["NAME"] = lead.name
                if lead.phone:
                    contact["PHONE"] = [{"VALUE": lead.phone, "VALUE_TYPE": "WORK"}]
                for key in (
                    "SOURCE_ID",
                    "SOURCE_DESCRIPTION",
                    "ASSIGNED_BY_ID",
                    "ORIGINATOR_ID",
                    "ORIGIN_ID",
                ):
                    if key in fields:
                        contact[key] = fields[key]
                cmds[f"contact{i}"] = ("crm.contact.add", self._add_params(contact))
                fields["CONTACT_ID"] = f"$result[contact{i}]"
            cmds[f"add{i}"] = ("crm.deal.add", self._add_params(fields))
        plan["add"] = f"add{i}"
        plan["phone"] = digits
        if lead.callback:
            cmds[f"todo{i}"] = self._todo(
                "lead" if mode == "classic" else "deal", f"$result[add{i}]", lead.callback
            )
        return plan, cmds

    def _write(
        self, leads: list[CrmLead], found: _Found, mode: Literal["classic", "simple"]
    ) -> list[PushOutcome]:
        """One write batch for as many of ``leads`` (a prefix) as fit 50 commands; their outcomes.
        ``found`` learns the records it creates, so a later batch's lead with the same phone
        joins them as one in this batch would."""
        entity: Entity = "lead" if mode == "classic" else "deal"
        commands: dict[str, tuple[str, Mapping[str, Any]]] = {}
        plans: list[dict[str, Any]] = []
        # Phones first seen in this chunk: a second lead with the same phone joins the first one.
        first_in_chunk: dict[str, int] = {}
        for i, lead in enumerate(leads):
            plan, cmds = self._plan_lead(i, lead, found, mode, first_in_chunk, commands)
            if plans and len(commands) + len(cmds) > MAX_BATCH_COMMANDS:
                break  # the rest goes in the next write batch
            plans.append(plan)
            commands.update(cmds)
            if plan.get("phone") and plan["phone"] not in first_in_chunk:
                first_in_chunk[plan["phone"]] = i
        chunk = leads[: len(plans)]

        if commands:
            origins = {lead.origin_id for lead in chunk}
            try:
                results, errors = self.batch(commands)
            except Bitrix24Error as exc:
                # Refused before running (limits, auth) → nothing happened; otherwise nobody knows.
                if exc.code not in ("QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "CLIENT_RATE_LIMIT") and (
                    exc.status is None or exc.status >= 500
                ):
                    self._unknown_outcome |= origins
                raise
            self._unknown_outcome -= origins
        else:
            results, errors = {}, {}

        outcomes: list[PushOutcome] = []
        for i, plan in enumerate(plans):
            lead = plan["lead"]
            if "own" in plan:
                outcomes.append(PushOutcome(lead.origin_id, plan["own"], entity, created=True))
                continue
            todo_error = errors.get(f"todo{i}")
            if "duplicate_of" in plan or "joined" in plan:
                merged_into: str | None = plan.get("duplicate_of") or _as_id(
                    results.get(f"add{plan.get('joined')}")
                )
                note_error = errors.get(f"note{i}")
                outcome = PushOutcome(
                    lead.origin_id, merged_into, entity, created=False, duplicate_of=merged_into
                )
                if note_error or merged_into is None:
                    failure = note_error or errors.get(f"add{plan.get('joined')}") or {}
                    self._fail(outcome, failure, "comment")
                elif todo_error:
                    self._fail(outcome, todo_error, "callback task")
                outcomes.append(outcome)
                continue
            key = plan["add"]
            crm_id = _as_id(results.get(key))
            outcome = PushOutcome(lead.origin_id, crm_id, entity, created=crm_id is not None)
            if crm_id is None:
                failure = errors.get(key) or errors.get(f"contact{i}") or {"error": "NO_RESULT"}
                self._fail(outcome, failure, "add")
            elif todo_error:
                self._fail(outcome, todo_error, "callback task")
            outcomes.append(outcome)
        self._remember_created(plans, results, found, mode)
        failed = sum(1 for o in outcomes if o.error)
        log.info(
            "bitrix24 push: leads=%d created=%d duplicates=%d failed=%d mode=%s",
            len(outcomes),
            sum(1 for o in outcomes if o.created),
            sum(1 for o in outcomes if o.duplicate_of),
            failed,
            mode,
        )
        return outcomes

    @staticmethod
    def _remember_created(
        plans: list[dict[str, Any]], results: Mapping[str, Any], found: _Found, mode: str
    ) -> None:
        """Phones this batch gave a record (classic: the lead; simple: the contact)."""
        for i, plan in enumerate(plans):
            digits = plan.get("phone")
            if not digits or digits in found.by_phone:
                continue
            created = _as_id(results.get(f"add{i}" if mode == "classic" else f"contact{i}"))
            if created:
                found.by_phone[digits] = [created]

    @staticmethod
    def _fail(outcome: PushOutcome, error: Mapping[str, Any], what: str) -> None:
        code = str(error.get("error") or "")
        description = str(error.get("error_description") or "")
        outcome.error = f"{what}: {code or 'ERROR'} {description}".strip()
        # A follow-up failure on an existing record is not worth re-sending the whole lead.
        outcome.retryable = _is_retryable_code(code) and (what == "add" or outcome.crm_id is None)

    @staticmethod
    def _comment_command(entity: str, entity_id: str, text: str) -> tuple[str, dict[str, Any]]:
        return "crm.timeline.comment.add", {
            "fields": {"ENTITY_ID": entity_id, "ENTITY_TYPE": entity, "COMMENT": text}
        }

    # ------------------------------------------------------------------ follow-ups on one record

    @staticmethod
    def _entity(entity: str) -> Entity:
        if entity not in ("lead", "deal"):
            raise ValueError(f"entity must be 'lead' or 'deal', got {entity!r}")
        return entity  # type: ignore[return-value]

    def update_status(self, crm_id: str, entity: str, status: str) -> None:
        kind = self._entity(entity)
        table = LEAD_STATUS_IDS if kind == "lead" else DEAL_STAGE_IDS
        if status not in table:
            raise ValueError(f"unknown lead status {status!r}")
        field_name = "STATUS_ID" if kind == "lead" else "STAGE_ID"
        self.call(f"crm.{kind}.update", {"id": crm_id, "fields": {field_name: table[status]}})

    def add_comment(self, crm_id: str, entity: str, text: str) -> None:
        method, params = self._comment_command(self._entity(entity), crm_id, text)
        self.call(method, params)

    def reassign(self, crm_id: str, entity: str, assigned_by_id: int) -> None:
        kind = self._entity(entity)
        self.call(f"crm.{kind}.update", {"id": crm_id, "fields": {"ASSIGNED_BY_ID": assigned_by_id}})

    def raise_priority(self, crm_id: str, entity: str) -> None:
        """Leads and deals have no priority field: a pinned timeline note is what a manager sees first."""
        kind = self._entity(entity)
        _, errors = self.batch(
            {
                "note": self._comment_command(kind, crm_id, "Высокий приоритет: ответить в первую очередь"),
                "pin": (
                    "crm.timeline.item.pin",
                    {"id": "$result[note]", "ownerTypeId": ENTITY_TYPE_ID[kind], "ownerId": crm_id},
                ),
            }
        )
        if "note" in errors:
            code = str(errors["note"].get("error") or "")
            raise Bitrix24Error(code, "raise_priority: comment failed", retryable=_is_retryable_code(code))
        # Only three items can be pinned per record; the note itself already says it.
        if "pin" in errors:
            log.info("bitrix24 raise_priority: pin refused (%s)", errors["pin"].get("error") or "-")

    def delete(self, crm_id: str, entity: str) -> list[str]:
        """Delete the record and the contact it names (a person asked to be forgotten); what was
        already gone is fine. Returns the records deleted (``lead 12``, ``contact 7``)."""
        kind = self._entity(entity)
        deleted: list[str] = []
        try:
            record = self.call(f"crm.{kind}.get", {"id": crm_id})
        except Bitrix24Error as exc:
            if exc.status in (400, 404) and "not found" in exc.description.lower():
                return deleted
            raise
        contact_id = _as_id(record.get("CONTACT_ID")) if isinstance(record, dict) else None
        for what, record_id in ((kind, crm_id), ("contact", contact_id)):
            if record_id is None:
                continue
            try:
                self.call(f"crm.{what}.delete", {"id": record_id})
                deleted.append(f"{what} {record_id}")
            except Bitrix24Error as exc:
                if not (exc.status in (400, 404) and "not found" in exc.description.lower()):
                    raise
        return deleted

    def add_details(self, crm_id: str, entity: str, lead: CrmLead) -> None:
        """What the client said after the record was written (a phone after a hot lead went out).
        Our own record (its ORIGIN_ID is ours) gets the new title and comments; the person — the
        lead itself, or the deal's contact — gets the name if it has none and the phone if it
        lacks it (a multi-field value without an ID is added beside the others). A record that
        joined an older one of the client keeps that record's texts. Safe to repeat."""
        kind = self._entity(entity)
        record = self.read(crm_id, kind)
        if record is None:
            return  # deleted in the CRM: nothing to bring up to date
        fields: dict[str, Any] = {}
        if str(record.get("ORIGIN_ID") or "") == lead.origin_id:
            fields.update(TITLE=lead.title, COMMENTS=lead.comments)
        if kind == "lead":
            fields.update(_missing_person_fields(record, lead))
        else:
            contact_id = _as_id(record.get("CONTACT_ID"))
            contact = self.call("crm.contact.get", {"id": contact_id}) if contact_id else None
            person = _missing_person_fields(contact if isinstance(contact, dict) else {}, lead)
            if contact_id and person:
                self.call("crm.contact.update", {"id": contact_id, "fields": person})
            elif person:
                fields["CONTACT_ID"] = self.call(
                    "crm.contact.add", {"fields": {**person, "ORIGIN_ID": lead.origin_id}}
                )
        if fields:
            self.call(f"crm.{kind}.update", {"id": crm_id, "fields": fields})

    def read(self, crm_id: str, entity: str) -> dict[str, Any] | None:
        """The record as ``crm.lead.get`` / ``crm.deal.get`` return it; None when it is gone."""
        kind = self._entity(entity)
        try:
            record = self.call(f"crm.{kind}.get", {"id": crm_id})
        except Bitrix24Error as exc:
            if exc.status in (400, 404) and "not found" in exc.description.lower():
                return None
            raise
        return record if isinstance(record, dict) else None

    def get_status(self, crm_id: str, entity: str, record: dict[str, Any] | None = None) -> str | None:
        """Our status for the record's current step; None when it maps to none or the record is gone."""
        kind = self._entity(entity)
        record = record if record is not None else self.read(crm_id, entity)
        if not isinstance(record, dict):
            return None
        if kind == "lead":
            return LEAD_STATUS_FROM_CRM.get(str(record.get("STATUS_ID") or ""))
        stage = str(record.get("STAGE_ID") or "")
        return DEAL_STATUS_FROM_CRM.get(stage.split(":")[-1])  # "C3:WON" in other pipelines
