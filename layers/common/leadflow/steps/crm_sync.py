"""Status changes reported back by the CRM (Bitrix24 outbound events, amoCRM webhooks) applied to our leads:
an accepted lead stops its SLA clock, a booking gets reminders, a no-show gets a win-back, and a
lead closed in the CRM is closed here — its owner's capacity comes back like any other close."""

from __future__ import annotations

from leadflow import clock
from leadflow.adapters.crm import Crm
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain import lifecycle
from leadflow.domain.models import CrmEvent, LeadStatus
from leadflow.observability import logger
from leadflow.steps.leads import LeadChanges


class CrmSync:
    def __init__(self, store: Store, crm: Crm, business: BusinessConfig):
        self.store = store
        self.crm = crm
        self.leads = LeadChanges(store, business)

    def apply(self, event: CrmEvent) -> None:
        lead = self.store.leads.by_crm_id(event.crm_id)
        if lead is None:
            logger.info("crm event for a record we do not track", extra={"event": event.event})
            return
        if event.event.endswith("DELETE"):
            status: str | None = LeadStatus.lost
        else:
            status = self.crm.status_of(lead)
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
        self.crm.mirror_status(changed)  # the owner's sheet (crm.mirror_sheet) follows the CRM
        logger.info("crm status applied", extra={"lead_id": changed.lead_id, "status": changed.status})
