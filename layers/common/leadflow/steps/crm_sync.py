"""Status changes reported back by the CRM (Bitrix24 outbound events) applied to our leads:
an accepted lead stops its SLA clock, a booking gets reminders, a no-show gets a win-back, and a
lead closed in the CRM is closed here — its owner's capacity comes back like any other close."""

from __future__ import annotations

from leadflow import clock
from leadflow.adapters.crm import Crm
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain import lifecycle
from leadflow.domain.models import CLOSED_STATUSES, CrmEvent, Lead, LeadStatus
from leadflow.observability import logger
from leadflow.steps.booking import Bookings
from leadflow.steps.leads import LeadChanges


class CrmSync:
    def __init__(self, store: Store, crm: Crm, business: BusinessConfig, bookings: Bookings | None = None):
        self.store = store
        self.crm = crm
        self.business = business
        self.leads = LeadChanges(store, business)
        self.bookings = bookings

    def apply(self, event: CrmEvent) -> None:
        lead = self.store.leads.by_crm_id(event.crm_id)
        if lead is None:
            logger.info("crm event for a record we do not track", extra={"event": event.event})
            return
        if event.event.endswith("DELETE"):
            status: str | None = LeadStatus.lost
        else:
            status = self.crm.status_of(lead)
            lead = self._booking_from_crm(lead) or lead
        if status is None:
            return
        now = clock.now()
        result = self.leads.apply(
            lead.lead_id, lambda current: lifecycle.set_from_crm(current, LeadStatus(status), now), known=lead
        )
        if result is None or not result.changed:
            return
        changed = result.lead
        if changed.accepted_at:
            self.store.timers.cancel(f"sla#{changed.lead_id}")
        if changed.status in (LeadStatus.booked, LeadStatus.no_show):
            self.leads.schedule_booking(changed, now)
        logger.info("crm status applied", extra={"lead_id": changed.lead_id, "status": changed.status})

    def _booking_from_crm(self, lead: Lead) -> Lead | None:
        """A visit time set (or moved) in the record's date field (``crm.booking_field``): the lead is
        booked for it, the 24 h / 2 h reminders follow it, and the client is told."""
        field = self.business.crm.booking_field
        read = getattr(self.crm, "booking_time", None)
        if not field or read is None or lead.status in CLOSED_STATUSES:
            return None
        at = read(lead, field)
        now = clock.now()
        if at is None or at == lead.appointment_at or at <= now:
            return None
        result = self.leads.apply(
            lead.lead_id, lambda current: lifecycle.book(current, at, None, now), known=lead
        )
        if result is None or not result.changed:
            return None
        self.store.timers.cancel(f"sla#{lead.lead_id}")
        self.leads.schedule_booking(result.lead, now)
        if self.bookings is not None:
            self.bookings.confirm_to_client(result.lead)
        logger.info("booking read from the crm", extra={"lead_id": lead.lead_id})
        return result.lead
