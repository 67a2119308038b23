"""Status changes reported back by the CRM (Bitrix24 outbound events) applied to our leads:
an accepted lead stops its SLA clock, a booking gets reminders, a no-show gets a win-back."""

from __future__ import annotations

from leadflow import clock, wiring
from leadflow.domain.models import CLOSED_STATUSES, CrmEvent, Lead, LeadStatus
from leadflow.observability import logger


def apply_crm_event(event: CrmEvent) -> None:
    crm = wiring.crm()
    store = wiring.store()
    lead = store.leads.by_crm_id(event.crm_id)
    if lead is None:
        logger.info("crm event for a record we do not track", extra={"event": event.event})
        return
    if event.event.endswith("DELETE"):
        status: str | None = LeadStatus.lost
    else:
        status = crm.status_of(lead) if hasattr(crm, "status_of") else None
    if status is None or status == lead.status:
        return
    now = clock.now()

    def apply(current: Lead) -> Lead | None:
        if current.status == status:
            return None
        current.status = LeadStatus(status)
        if current.status not in (LeadStatus.new, LeadStatus.qualifying, LeadStatus.assigned):
            current.accepted_at = current.accepted_at or now
        return current

    changed = store.leads.mutate(lead.lead_id, apply)
    if changed is None:
        return
    if changed.accepted_at:
        store.timers.cancel(f"sla#{changed.lead_id}")
    if changed.status in CLOSED_STATUSES:
        store.contacts.close_lead(changed.contact_id, changed.lead_id)
    if changed.status in (LeadStatus.booked, LeadStatus.no_show):
        from leadflow.steps.remind import schedule_booking_reminders

        schedule_booking_reminders(store, wiring.business(), changed, now)
    logger.info("crm status applied", extra={"lead_id": changed.lead_id, "status": changed.status})
