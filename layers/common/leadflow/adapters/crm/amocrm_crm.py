"""Our leads in amoCRM (``crm: {kind: amocrm, amocrm: {entry, pipeline_id, statuses, …}}``).

First delivery of a route batch, per lead at most three requests and usually fewer:
- one ``GET /contacts?query=`` per distinct phone (a repeat client's new lead joins the contact
  amoCRM already has — found by phone first, as amoCRM's own duplicate control would);
- one ``POST /leads/complex`` for the whole batch (≤ 50 leads): the lead with its contact, our
  owner as the responsible user, UTM tracking fields, channel and source as tags; or, with
  ``entry: unsorted``, one ``POST /leads/unsorted/forms`` («Неразобранное», our lead id as the
  item's ``source_uid``) and no contact search — a person accepts those and amoCRM merges them;
- one ``POST /tasks`` for the batch's off-hours call-backs, when there are any.

Exactly once: amoCRM has no external-id field to search by, so the lead's name ends with our
lead id (``… · L1a2b3c4d5e6f``) and a redelivery (the earlier attempt may have created it and lost
the answer) looks it up by that id first (``GET /leads?query=``; «Неразобранное»:
``GET /leads/unsorted/{uid}``, then by name in case a person accepted it since), and adds the
call-back task only if the lead has none.
"""

from __future__ import annotations

import logging
from typing import Any

from leadflow.adapters.crm.amocrm import MAX_COMPLEX_LEADS, AmoCrmClient, AmoCrmError, Created, same_phone
from leadflow.adapters.crm.base import CrmUnavailable, Pushed, not_pushed
from leadflow.business import AMOCRM_CLOSING_STAGES, BusinessConfig
from leadflow.domain.cards import CHANNEL_LABEL
from leadflow.domain.models import Lead

log = logging.getLogger(__name__)

UTM_CODES = {"source": "UTM_SOURCE", "medium": "UTM_MEDIUM", "campaign": "UTM_CAMPAIGN",
             "content": "UTM_CONTENT", "term": "UTM_TERM"}  # fmt: skip
CALLBACK_TEXT = "Перезвонить клиенту: заявка пришла в нерабочее время"


def lead_name(lead: Lead, business: BusinessConfig) -> str:
    service = business.service(lead.service)
    who = lead.contact.name or "клиент"
    return f"{service.name if service else 'Заявка'} — {who} ({CHANNEL_LABEL.get(lead.channel, lead.channel)}) · {lead.lead_id}"


def _phone_field(phone: str) -> dict[str, Any]:
    return {"field_code": "PHONE", "values": [{"enum_code": "MOB", "value": phone}]}


class AmoCrm:
    name = "amocrm"

    def __init__(self, client: AmoCrmClient, business: BusinessConfig):
        self.client = client
        self.business = business

    @property
    def config(self):  # type: ignore[no-untyped-def]
        return self.business.crm.amocrm

    def pending(self, lead: Lead) -> bool:
        return not_pushed(lead)

    def mirror_status(self, lead: Lead) -> None:
        return None

    # ------------------------------------------------------------------ what goes in
    def _lead_fields(self, lead: Lead, business: BusinessConfig, user: str | None) -> dict[str, Any]:
        config = business.crm.amocrm
        fields: dict[str, Any] = {"name": lead_name(lead, business), "price": 0}
        if config.pipeline_id:
            fields["pipeline_id"] = config.pipeline_id
        if config.status_id:
            fields["status_id"] = config.status_id
        if user:
            fields["responsible_user_id"] = int(user)
        if config.utm_fields:
            utm = [
                {"field_code": code, "values": [{"value": value}]}
                for part, code in UTM_CODES.items()
                if (value := getattr(lead.utm, part, None))
            ]
            if utm:
                fields["custom_fields_values"] = utm
        tags = ["leadflow", CHANNEL_LABEL.get(lead.channel, lead.channel), lead.source, *lead.tags]
        fields["_embedded"] = {"tags": [{"name": t} for t in dict.fromkeys(t for t in tags if t)]}
        return fields

    def _new_contact(self, lead: Lead) -> dict[str, Any]:
        contact: dict[str, Any] = {"name": lead.contact.name or lead.contact.phone or "Клиент"}
        if lead.contact.phone:
            contact["custom_fields_values"] = [_phone_field(lead.contact.phone)]
        return contact

    def _task(self, lead: Lead, amo_lead_id: int, user: str | None) -> dict[str, Any]:
        assert lead.callback_at is not None
        task: dict[str, Any] = {
            "text": CALLBACK_TEXT,
            "complete_till": int(lead.callback_at.timestamp()),
            "entity_id": amo_lead_id,
            "entity_type": "leads",
            "task_type_id": self.config.task_type_id,
            "request_id": lead.lead_id,
        }
        if user:
            task["responsible_user_id"] = int(user)
        return task

    # ------------------------------------------------------------------ push
    def push(
        self, leads: list[tuple[Lead, str | None]], business: BusinessConfig, redelivered: bool = False
    ) -> list[Pushed]:
        done: dict[str, Pushed] = {}
        tasks: list[dict[str, Any]] = []
        try:
            todo = leads
            if redelivered:
                todo = []
                for lead, user in leads:
                    found = self._find_ours(lead, business)
                    if found is None:
                        todo.append((lead, user))
                        continue
                    done[lead.lead_id] = Pushed(lead.lead_id, str(found), "lead")
                    if lead.callback_at and not self.client.tasks_of(found):
                        tasks.append(self._task(lead, found, user))
            if business.crm.amocrm.entry == "unsorted":
                created = self._add_unsorted(todo, business, done)
            else:
                created = self._add_complex(todo, business, done)
            for lead, user in todo:
                amo_id = created.get(lead.lead_id)
                if amo_id is not None and lead.callback_at:
                    tasks.append(self._task(lead, amo_id, user))
            if tasks:
                self.client.add_tasks(tasks)
        except AmoCrmError as exc:
            if exc.retryable:
                raise CrmUnavailable(str(exc)) from None  # a redelivery finds what was created
            return [done.get(lead.lead_id) or Pushed(lead.lead_id, None, error=str(exc)) for lead, _ in leads]
        log.info("amocrm push: leads=%d requests=%d", len(leads), self.client.requests_sent)
        return [done[lead.lead_id] for lead, _ in leads]

    def _find_ours(self, lead: Lead, business: BusinessConfig) -> int | None:
        if business.crm.amocrm.entry == "unsorted":
            item = self.client.unsorted(lead.lead_id)
            if item is not None and (created := self.client.created_from_unsorted(item).lead_id):
                return created
            # not (or no longer) in «Неразобранное»: a person may have accepted it since
        found = self.client.leads_named(lead.lead_id)
        return min(int(item["id"]) for item in found) if found else None

    def _add_complex(
        self, leads: list[tuple[Lead, str | None]], business: BusinessConfig, done: dict[str, Pushed]
    ) -> dict[str, int]:
        """Create the leads; a lead amoCRM refuses (400 naming it) is reported, the rest sent again."""
        contacts: dict[str, int | None] = {}  # phone digits → the contact to join (None: new)
        for lead, _ in leads:
            phone = lead.contact.phone
            if phone and phone not in contacts:
                found = self.client.contacts_with_phone(phone)
                contacts[phone] = min(c.id for c in found) if found else None
        created: dict[str, int] = {}
        pending = list(leads)
        while pending:
            # A phone new to amoCRM twice in one batch: the second lead waits for the first's contact.
            round_: list[tuple[Lead, str | None]] = []
            fresh: set[str] = set()
            later: list[tuple[Lead, str | None]] = []
            for lead, user in pending:
                phone = lead.contact.phone
                if (phone and contacts.get(phone) is None and phone in fresh) or len(
                    round_
                ) >= MAX_COMPLEX_LEADS:
                    later.append((lead, user))
                    continue
                if phone and contacts.get(phone) is None:
                    fresh.add(phone)
                round_.append((lead, user))
            payload = []
            for lead, user in round_:
                fields = self._lead_fields(lead, business, user)
                contact_id = contacts.get(lead.contact.phone or "")
                fields["_embedded"]["contacts"] = [
                    {"id": contact_id} if contact_id else self._new_contact(lead)
                ]
                fields["request_id"] = lead.lead_id
                payload.append(fields)
            try:
                results: list[Created] = self.client.add_complex(payload)
            except AmoCrmError as exc:
                named = {
                    rid: why for rid, why in exc.invalid.items() if rid in {x.lead_id for x, _ in round_}
                }
                if exc.retryable or not named:
                    raise
                for lead, _ in round_:
                    if lead.lead_id in named:
                        done[lead.lead_id] = Pushed(
                            lead.lead_id, None, error=f"amoCRM: {named[lead.lead_id]}"
                        )
                pending = [item for item in round_ if item[0].lead_id not in named] + later
                continue
            for (lead, _), result in zip(round_, results, strict=True):
                created[lead.lead_id] = result.lead_id
                done[lead.lead_id] = Pushed(lead.lead_id, str(result.lead_id), "lead")
                if lead.contact.phone and result.contact_id:
                    contacts[lead.contact.phone] = result.contact_id
            pending = later
        return created

    def _add_unsorted(
        self, leads: list[tuple[Lead, str | None]], business: BusinessConfig, done: dict[str, Pushed]
    ) -> dict[str, int]:
        config = business.crm.amocrm
        items = []
        for lead, user in leads:
            sent_at = int(lead.received_at.timestamp())
            item: dict[str, Any] = {
                "source_uid": lead.lead_id,
                "source_name": config.source_name,
                "created_at": sent_at,
                "metadata": {
                    "form_id": f"leadflow-{lead.channel}",
                    "form_name": f"leadflow: {CHANNEL_LABEL.get(lead.channel, lead.channel)}",
                    "form_page": f"leadflow:{lead.channel}",  # no page: where the lead came in
                    "form_sent_at": sent_at,
                },
                "_embedded": {
                    "leads": [self._lead_fields(lead, business, user)],
                    "contacts": [self._new_contact(lead)],
                },
            }
            if config.pipeline_id:
                item["pipeline_id"] = config.pipeline_id
            items.append(item)
        created: dict[str, int] = {}
        for start in range(0, len(items), MAX_COMPLEX_LEADS):
            chunk = leads[start : start + MAX_COMPLEX_LEADS]
            for (lead, _), result in zip(
                chunk, self.client.add_unsorted(items[start : start + MAX_COMPLEX_LEADS]), strict=True
            ):
                created[lead.lead_id] = result.lead_id
                done[lead.lead_id] = Pushed(lead.lead_id, str(result.lead_id), "lead")
        return created

    # ------------------------------------------------------------------ follow-ups
    def _call(self, what: str, fn, *args) -> Any:  # type: ignore[no-untyped-def]
        try:
            return fn(*args)
        except AmoCrmError as exc:
            if exc.retryable:
                raise CrmUnavailable(f"{what}: {exc}") from None
            raise

    def update_status(self, lead: Lead) -> None:
        if not lead.crm_id:
            return
        stage = self.config.stage_of(str(lead.status))
        if stage is None:
            return  # the config maps no stage for it: the lead stays where it is in amoCRM
        fields: dict[str, Any] = {"status_id": stage}
        pipeline = self.config.pipeline_id
        if pipeline is None and stage in AMOCRM_CLOSING_STAGES.values():
            # 142/143 exist in every pipeline: amoCRM needs to be told which one
            record = self._call("update_status", self.client.lead, lead.crm_id) or {}
            pipeline = record.get("pipeline_id")
        if pipeline:
            fields["pipeline_id"] = int(pipeline)
        self._call("update_status", self.client.update_lead, lead.crm_id, fields)

    def update_details(self, lead: Lead, business: BusinessConfig) -> None:
        """The deal's name (service, client) and its main contact: the name when it has only the
        placeholder, the phone beside those it has (PATCH replaces a field's values: all are sent)."""
        if not lead.crm_id:
            return
        self._call(
            "update_details", self.client.update_lead, lead.crm_id, {"name": lead_name(lead, business)}
        )
        crm_id = lead.crm_id
        record = self._call("update_details", lambda: self.client.lead(crm_id, with_contacts=True)) or {}
        linked = (record.get("_embedded") or {}).get("contacts") or []
        main = next((c for c in linked if c.get("is_main")), linked[0] if linked else None)
        if main is None:
            return
        contact = self._call("update_details", self.client.contact, main["id"])
        if not contact:
            return
        fields: dict[str, Any] = {}
        if lead.contact.name and contact.get("name") in ("", "Клиент", lead.contact.phone):
            fields["name"] = lead.contact.name
        phones = [
            value
            for field in contact.get("custom_fields_values") or []
            if field.get("field_code") == "PHONE"
            for value in field.get("values") or []
        ]
        if lead.contact.phone and not any(
            same_phone(str(v.get("value", "")), lead.contact.phone) for v in phones
        ):
            kept = [{"value": v["value"], "enum_code": v.get("enum_code", "WORK")} for v in phones]
            fields["custom_fields_values"] = [
                {"field_code": "PHONE", "values": [*kept, {"enum_code": "MOB", "value": lead.contact.phone}]}
            ]
        if fields:
            self._call("update_details", self.client.update_contact, main["id"], fields)

    def raise_priority(self, lead: Lead) -> None:
        if lead.crm_id:
            self._call(
                "raise_priority",
                self.client.add_note,
                lead.crm_id,
                "Высокий приоритет: ответить в первую очередь",
            )

    def reassign(self, lead: Lead, crm_user_id: str | None) -> None:
        if lead.crm_id and crm_user_id:
            self._call(
                "reassign", self.client.update_lead, lead.crm_id, {"responsible_user_id": int(crm_user_id)}
            )

    def status_of(self, lead: Lead) -> str | None:
        if not lead.crm_id:
            return None
        record = self._call("status_of", self.client.lead, lead.crm_id)
        stage = record.get("status_id") if isinstance(record, dict) else None
        return self.config.status_of(int(stage)) if isinstance(stage, int) else None

    def forget(self, lead: Lead) -> str | None:
        if not lead.crm_id:
            return None
        return (
            f"amoCRM: API v4 не удаляет сделки и контакты — удалите сделку {lead.crm_id} и её контакт "
            f"вручную ({self.client_url(lead.crm_id)})"
        )

    def client_url(self, crm_id: str) -> str:
        return self.client._base.removesuffix("api/v4/") + f"leads/detail/{crm_id}"
