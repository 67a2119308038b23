"""Our leads in Bitrix24: maps a Lead to the client's CrmLead and keeps the record's status,
owner and priority in step with ours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leadflow.adapters.crm.base import CrmUnavailable, Pushed, not_pushed
from leadflow.adapters.crm.bitrix24 import Bitrix24Client, Bitrix24Error, CallbackTask, CrmLead
from leadflow.business import BusinessConfig
from leadflow.domain.knowledge import describe_services, lead_services
from leadflow.domain.models import Lead
from leadflow.domain.wording import describe_time


@dataclass(frozen=True)
class CrmBooking:
    """The visit as the CRM record holds it: its time (None: the field is empty) and the CRM user
    responsible for the record (whose calendar the visit takes)."""

    at: datetime | None
    responsible: str | None


# Bitrix24's built-in SOURCE_IDs; other channels go in as OTHER with the channel named.
DEFAULT_SOURCE_IDS = {"call": "CALL", "form": "WEBFORM", "sms": "OTHER"}


def crm_lead(lead: Lead, business: BusinessConfig, assigned_by_id: str | None) -> CrmLead:
    service = business.service(lead.service)
    branch = business.branch(lead.branch)
    who = lead.contact.name or lead.contact.phone or "клиент"
    # «2026-03-14 после 18:00», «2026-03-15 вечером», «2026-03-15 15:00»: a window stays a window
    hour = describe_time(lead.preferred_time, lead.preferred_window).removeprefix("в ")
    when = " ".join(v for v in (str(lead.preferred_date or ""), hour) if v)
    services = lead_services(lead, business)
    comments = "\n".join(
        line
        for line in (
            f"Услуги: {describe_services(services)}" if len(services) > 1 else None,
            f"Услуга: {service.name}" if service and len(services) < 2 else None,
            f"Филиал: {branch.title}" if branch else None,
            f"Желаемое время: {when}" if when else None,
            f"Интерес: {lead.intent or '—'}, температура: {lead.temperature or '—'}"
            + (", срочно" if lead.urgent else ""),
            f"Промокод: {lead.promo}" if lead.promo else None,
            f"Вложения: {', '.join(lead.media)}" if lead.media else None,
            f"Назначение: {lead.assignment_reason}" if lead.assignment_reason else None,
            f"leadflow: {lead.lead_id}",
        )
        if line
    )
    responsible = int(assigned_by_id) if assigned_by_id else None
    return CrmLead(
        origin_id=lead.lead_id,
        title=f"{service.name if service else 'Заявка'} — {who} ({lead.channel})",
        name=lead.contact.name,
        phone=lead.contact.phone,
        source_id=business.crm.source_ids.get(lead.channel) or DEFAULT_SOURCE_IDS.get(lead.channel, "OTHER"),
        source_description=f"leadflow: {lead.channel}" + (f" / {lead.source}" if lead.source else ""),
        utm=lead.utm.model_dump(),
        assigned_by_id=responsible,
        comments=comments,
        tags=lead.tags,
        callback=CallbackTask(due=lead.callback_at, text="Перезвонить клиенту", responsible_id=responsible)
        if lead.callback_at
        else None,
    )


class Bitrix24Crm:
    name = "bitrix24"

    def __init__(self, client: Bitrix24Client):
        self.client = client

    def pending(self, lead: Lead) -> bool:
        return not_pushed(lead)

    def mirror_status(self, lead: Lead) -> None:
        return None

    def push(
        self, leads: list[tuple[Lead, str | None]], business: BusinessConfig, redelivered: bool = False
    ) -> list[Pushed]:
        records = [crm_lead(lead, business, user) for lead, user in leads]
        try:
            outcomes = self.client.push(records, after_unknown_outcome=redelivered)
        except Bitrix24Error as exc:
            if exc.retryable:
                raise CrmUnavailable(str(exc)) from None
            return [Pushed(lead.lead_id, None, error=str(exc), retryable=False) for lead, _ in leads]
        return [
            Pushed(o.origin_id, o.crm_id, o.entity, error=o.error, retryable=o.retryable) for o in outcomes
        ]

    def _call(self, what: str, fn, *args) -> None:  # type: ignore[no-untyped-def]
        try:
            fn(*args)
        except Bitrix24Error as exc:
            if exc.retryable:
                raise CrmUnavailable(f"{what}: {exc}") from None
            raise

    def update_status(self, lead: Lead) -> None:
        if lead.crm_id and lead.crm_entity:
            self._call(
                "update_status", self.client.update_status, lead.crm_id, lead.crm_entity, str(lead.status)
            )

    def update_details(self, lead: Lead, business: BusinessConfig) -> None:
        if lead.crm_id and lead.crm_entity:
            record = crm_lead(lead, business, None)
            self._call("update_details", self.client.add_details, lead.crm_id, lead.crm_entity, record)

    def raise_priority(self, lead: Lead) -> None:
        if lead.crm_id and lead.crm_entity:
            self._call("raise_priority", self.client.raise_priority, lead.crm_id, lead.crm_entity)

    def reassign(self, lead: Lead, crm_user_id: str | None) -> None:
        if lead.crm_id and lead.crm_entity and crm_user_id:
            self._call("reassign", self.client.reassign, lead.crm_id, lead.crm_entity, int(crm_user_id))

    def status_of(self, lead: Lead) -> str | None:
        if not (lead.crm_id and lead.crm_entity):
            return None
        try:
            return self.client.get_status(lead.crm_id, lead.crm_entity)
        except Bitrix24Error as exc:
            raise CrmUnavailable(str(exc)) from None

    def booking_time(self, lead: Lead, field: str) -> datetime | None:
        """The visit's time a manager set in the record's date field (``crm.booking_field``); None
        when it is empty, not a date, or the record is gone."""
        found = self.booking_in_crm(lead, field)
        return found.at if found else None

    def booking_in_crm(self, lead: Lead, field: str) -> CrmBooking | None:
        """The record's date field (``crm.booking_field``) and who is responsible for the record
        (``ASSIGNED_BY_ID``), read with one ``crm.lead.get``/``crm.deal.get``: ``at`` None when the
        field is empty (a manager cleared it). None when the record is gone or the field holds
        something that is not a date-time with an offset (nothing to act on)."""
        if not (lead.crm_id and lead.crm_entity):
            return None
        try:
            record = self.client.read(lead.crm_id, lead.crm_entity)
        except Bitrix24Error as exc:
            raise CrmUnavailable(str(exc)) from None
        if not isinstance(record, dict):
            return None
        responsible = str(record.get("ASSIGNED_BY_ID") or "").strip() or None
        value = record.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            return CrmBooking(None, responsible)
        if not isinstance(value, str):
            return None
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if parsed.tzinfo is None:  # Bitrix24 sends "2026-12-05T14:30:00+03:00"
            return None
        return CrmBooking(parsed, responsible)

    def forget(self, lead: Lead) -> str | None:
        if not (lead.crm_id and lead.crm_entity):
            return None
        try:
            self.client.delete(lead.crm_id, lead.crm_entity)
        except Bitrix24Error as exc:
            return f"Битрикс24 не удалил запись {lead.crm_entity} {lead.crm_id}: {exc}"
        return None
