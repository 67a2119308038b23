"""Changing a stored lead: a lifecycle change, one conditional write, and what the change means
for everything around the lead — in one place, so no way of closing a lead forgets a part.

When a lead closes (visited, no-show, cancelled, lost, not a target — by a button, a client's
answer, the CRM or a nurture hand-off): the contact's next message opens a new lead, the owner's
capacity comes back, the SLA clock and the nudges stop, a visit is counted (once). When its owner
changes: the old owner's capacity comes back and the new owner's is taken. Every one of these
writes is idempotent (sets of lead ids, conditional writes), so a retried step repeats them
harmlessly — and a retry is exactly when they must run again, because the crash may have come
between the lead's write and these.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from leadflow.adapters.store import Store
from leadflow.adapters.store.leads import Changed
from leadflow.business import BusinessConfig
from leadflow.domain import plans
from leadflow.domain.models import CLOSED_STATUSES, Lead, LeadStatus

TIMERS_ENDED_BY_CLOSE = ("sla", "route_wait", "nudge", "emoji_wait")


class LeadChanges:
    def __init__(self, store: Store, business: BusinessConfig):
        self.store = store
        self.business = business

    def apply(
        self, lead_id: str, change: Callable[[Lead], Lead | None], *, known: Lead | None = None
    ) -> Changed | None:
        """Apply ``change``; None when there is no such lead."""
        result = self.store.leads.change(lead_id, change, known=known)
        if result is None:
            return None
        before, after = result.before, result.lead
        if result.changed and before.owner != after.owner and after.status not in CLOSED_STATUSES:
            self.owner_changed(after, before.owner)
        if after.status in CLOSED_STATUSES and (result.changed or before.status in CLOSED_STATUSES):
            # Also on a change that found the lead closed: the earlier attempt may have died here.
            self.closed(after, first=result.changed)
        return result

    def owner_changed(self, lead: Lead, previous: str | None) -> None:
        if lead.owner:
            self.store.staff.take_lead(lead.owner, lead.lead_id)
        if previous and previous != lead.owner:
            self.store.staff.release_lead(previous, lead.lead_id)

    def closed(self, lead: Lead, *, first: bool = True) -> None:
        self.store.contacts.close_lead(lead.contact_id, lead.lead_id)
        if lead.owner:
            self.store.staff.release_lead(lead.owner, lead.lead_id)
        if lead.status == LeadStatus.visited and first:
            # Only by the change that closed it: a lead an earlier version closed is in the old
            # bare count already (a crash between the two writes costs one visit, never adds one).
            self.store.contacts.count_visit(lead.contact_id, lead.lead_id)
        ended = [f"{kind}#{lead.lead_id}" for kind in TIMERS_ENDED_BY_CLOSE]
        if lead.status in (LeadStatus.cancelled, LeadStatus.lost):  # no reminder of a visit that is off
            ended += [
                f"appt#{lead.lead_id}#{hours}" for hours in self.business.reminders.before_appointment_h
            ]
        self.store.timers.cancel_all(ended)

    # ------------------------------------------------------------------ the lead's timers
    def schedule_sla(self, lead: Lead, now: datetime) -> None:
        timer = plans.sla_timer(self.business, lead, now)
        if timer is not None:
            self.store.timers.put(timer, only_if_new=True)

    def schedule_booking(self, lead: Lead, now: datetime) -> None:
        """After a booking or a no-show: appointment reminders, or the win-back offer."""
        self.store.timers.cancel(f"nudge#{lead.lead_id}")
        for timer in plans.booking_timers(self.business, lead, now):
            self.store.timers.put(timer, only_if_new=timer.kind == "winback")

    def schedule_nudge(self, lead: Lead) -> None:
        timer = plans.nudge_timer(self.business, lead)
        if timer is not None:
            self.store.timers.put(timer, only_if_new=True)
