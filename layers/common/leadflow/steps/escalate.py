"""SLA timers and the escalation ladder (the escalate function, every minute).

SLA minutes depend on temperature and count in the branch's business hours. The ladder: at
due → remind the owner; +escalate_after → tell the senior and raise priority; +reassign_after
→ give the lead to the next free specialist. Each step happens once (the timer's ``step``
moves on only after the step's messages went out; the messages themselves are exactly-once),
and the ladder stops the moment the lead is accepted or closed.
"""

from __future__ import annotations

from datetime import datetime

from leadflow.adapters.notify import staff_chat
from leadflow.adapters.store import Store
from leadflow.adapters.store.timers import Timer
from leadflow.business import BusinessConfig
from leadflow.clock import iso
from leadflow.domain.calendar import Calendar
from leadflow.domain.models import CLOSED_STATUSES, Lead, LeadStatus, OutboundMessage, Temperature
from leadflow.observability import logger, metrics


def sla_minutes(business: BusinessConfig, temperature: str | None) -> int:
    sla = business.sla
    return {Temperature.hot: sla.hot_min, Temperature.warm: sla.warm_min}.get(temperature, sla.cold_min)  # type: ignore[call-overload]


def sla_due(business: BusinessConfig, lead: Lead, start: datetime) -> datetime:
    calendar = Calendar.for_branch(business, lead.branch)
    return calendar.add_business_minutes(start, sla_minutes(business, lead.temperature))


def schedule_sla(store: Store, business: BusinessConfig, lead: Lead, now: datetime) -> None:
    if lead.accepted_at or lead.status in CLOSED_STATUSES:
        return
    due = sla_due(business, lead, lead.assigned_at or now)
    store.timers.put(
        Timer(
            timer_id=f"sla#{lead.lead_id}",
            queue="escalate",
            kind="sla",
            due_at=iso(due),
            lead_id=lead.lead_id,
        ),
        only_if_new=True,
    )


def is_waiting_for_owner(lead: Lead) -> bool:
    return lead.accepted_at is None and lead.status == LeadStatus.assigned


def seniors(business: BusinessConfig) -> list[str]:
    chosen = [s.id for s in business.staff if s.active and s.role == "senior"]
    return chosen or [s.id for s in business.staff if s.active and s.role == "manager"]


def notify_staff(
    outbound,
    store: Store,
    business: BusinessConfig,
    staff_id: str,
    lead: Lead,
    kind: str,
    text: str,
    key: str,
) -> None:
    outbound.send(
        OutboundMessage(
            id=f"{kind}:{lead.lead_id}:{key}:{staff_id}",
            channel="telegram",
            to=staff_chat(store, business, staff_id),
            lead_id=lead.lead_id,
            kind=kind,
            text=text,
            buttons=[[{"text": "Беру", "callback_data": f"acc:{lead.lead_id}"}]],
        )
    )


def lead_label(business: BusinessConfig, lead: Lead) -> str:
    service = business.service(lead.service)
    who = lead.contact.name or "клиент"
    return f"{who}, {service.name if service else 'услуга не указана'} ({lead.channel}, {lead.temperature})"


class Escalator:
    """Works the ``escalate`` queue of timers: SLA ladders and leads waiting to be routed."""

    def __init__(self, store: Store, outbound, crm, business: BusinessConfig, route_queue, reassign):
        self.store = store
        self.outbound = outbound
        self.crm = crm
        self.business = business
        self.route_queue = route_queue
        self.reassign = reassign  # callable(lead, now) -> new owner id | None

    def run(self, now: datetime) -> int:
        done = 0
        for timer in self.store.timers.due("escalate", now):
            if not self.store.timers.claim(timer, now):
                continue  # an overlapping run took it
            if timer.kind == "route_wait":
                self._route_waiting(timer)
            elif timer.kind == "sla":
                self._sla_step(timer, now)
            else:
                logger.warning("unknown timer kind", extra={"kind": timer.kind})
                self.store.timers.cancel(timer.timer_id)
            done += 1
        return done

    def _after(self, lead: Lead, now: datetime, minutes: int) -> datetime:
        """The ladder's next step in business minutes, like the SLA itself: a lead that breaches
        at closing time is escalated and reassigned after opening, when someone can take it."""
        return Calendar.for_branch(self.business, lead.branch).add_business_minutes(now, minutes)

    def _route_waiting(self, timer: Timer) -> None:
        from leadflow.domain.models import LeadReady

        lead = self.store.leads.get(timer.lead_id or "")
        if lead and lead.is_open and not lead.routed:
            self.route_queue.send(LeadReady(lead_id=lead.lead_id, reason="waited"))
        self.store.timers.cancel(timer.timer_id)

    def _sla_step(self, timer: Timer, now: datetime) -> None:
        lead = self.store.leads.get(timer.lead_id or "")
        if lead is None or not is_waiting_for_owner(lead) or not lead.owner:
            self.store.timers.cancel(timer.timer_id)
            return
        sla = self.business.sla
        label = lead_label(self.business, lead)
        if timer.step == 0:
            self.store.leads.mutate(lead.lead_id, _mark_breached)
            metrics.add_metric(name="SlaBreaches", unit="Count", value=1)
            notify_staff(
                self.outbound,
                self.store,
                self.business,
                lead.owner,
                lead,
                "sla_reminder",
                f"⏰ Лид ждёт ответа дольше SLA: {label}. Нажмите «Беру».",
                "0",
            )
            self.store.timers.reschedule(timer.timer_id, self._after(lead, now, sla.escalate_after_min), 1)
        elif timer.step == 1:
            for senior in seniors(self.business):
                notify_staff(
                    self.outbound,
                    self.store,
                    self.business,
                    senior,
                    lead,
                    "escalation",
                    f"🔺 Лид без ответа ({lead.owner}): {label}. Приоритет повышен.",
                    # Per owner: after a reassignment the senior must hear about the new owner too.
                    f"1:{lead.owner}",
                )
            raised = self.store.leads.mutate(lead.lead_id, _raise_priority)
            if raised is not None and lead.priority != "high":  # mutate returns the lead unchanged too
                self.crm.raise_priority(raised)
            wait = max(sla.reassign_after_min - sla.escalate_after_min, 1)
            self.store.timers.reschedule(timer.timer_id, self._after(lead, now, wait), 2)
        else:
            # Reassign first, then restart this same timer for the new owner: a crash in between
            # leaves the timer due again when its lease ends, never a lead without a clock.
            if timer.data.get("round") == 2:
                self.store.timers.cancel(timer.timer_id)  # reassigned once already: no ping-pong
                return
            if "reassigned" not in lead.tags:
                new_owner = self.reassign(lead, now)
                logger.info(
                    "reassigned", extra={"lead_id": lead.lead_id, "from": lead.owner, "to": new_owner}
                )
                if new_owner is None:
                    self.store.timers.cancel(timer.timer_id)  # nobody else to give it to: the senior knows
                    return
                lead = self.store.leads.get(lead.lead_id) or lead
            self.store.timers.reschedule(
                timer.timer_id, sla_due(self.business, lead, now), 0, {**timer.data, "round": 2}
            )


def _mark_breached(lead: Lead) -> Lead | None:
    if "sla_breached" in lead.tags:
        return None
    lead.tags = [*lead.tags, "sla_breached"]
    return lead


def _raise_priority(lead: Lead) -> Lead | None:
    if lead.priority == "high":
        return None
    lead.priority = "high"
    return lead
