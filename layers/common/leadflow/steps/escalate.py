"""escalate (every minute): SLA ladders, and leads that waited long enough to be routed.

SLA minutes depend on temperature and count in the branch's business hours. The ladder: at
due → remind the owner; +escalate_after → tell the senior and raise priority; +reassign_after
→ give the lead to the next free specialist. Each step happens once (the timer's ``step``
moves on only after the step's messages went out; the messages themselves are exactly-once),
and the ladder stops the moment the lead is accepted or closed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from leadflow import clock, failpoints
from leadflow.adapters.crm import Crm
from leadflow.adapters.messenger import Messenger
from leadflow.adapters.queues import Queue
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain.cards import Button, button, lead_label, staff_name
from leadflow.domain.models import Intent, Lead, LeadReady
from leadflow.domain.plans import Timer, after_business_minutes, is_waiting_for_owner, seniors, sla_due
from leadflow.observability import logger, metrics
from leadflow.steps.timers import work_due_timers

Reassign = Callable[[Lead, datetime], "str | None"]


class EscalateStep:
    def __init__(
        self, store: Store, messenger: Messenger, crm: Crm, business: BusinessConfig, route_queue: Queue,
        reassign: Reassign,
    ):  # fmt: skip
        self.store = store
        self.messenger = messenger
        self.crm = crm
        self.business = business
        self.route_queue = route_queue
        self.reassign = reassign  # the route step's: the next free specialist by the same rules

    def handle_event(self, event: dict, context: Any) -> dict:
        """An EventBridge schedule's tick: work what is due on the leadflow clock."""
        self.messenger.until_deadline(context)
        return {"timers": self.run(clock.now())}

    def run(self, now: datetime) -> int:
        handlers = {
            "route_wait": self._route_waiting,
            "sla": self._sla_step,
            "emoji_wait": self._emoji_waited,
        }
        return work_due_timers(self.store, "escalate", now, handlers, self._gave_up)

    def _gave_up(self, timer: Timer, reason: str) -> None:
        lead = self.store.leads.get(timer.lead_id) if timer.lead_id else None
        if lead is None:
            return
        text = (
            f"⚠️ Не удалось проследить за лидом ({reason}): {lead_label(self.business, lead)}. Проверьте его."
        )
        for senior in seniors(self.business):
            self.messenger.to_staff(senior, lead, f"gave_up:{timer.timer_id}:{senior}", "timer_failed", text)

    def _route_waiting(self, timer: Timer, now: datetime) -> None:
        lead = self.store.leads.get(timer.lead_id or "")
        if lead and lead.is_open and not lead.routed:
            self.route_queue.send(LeadReady(lead_id=lead.lead_id, reason="waited"))
        self.store.timers.cancel(timer.timer_id)

    def _emoji_waited(self, timer: Timer, now: datetime) -> None:
        """A day after «💅🔥» with no words since: the not-target lead is closed (by route, as any other)."""
        lead = self.store.leads.get(timer.lead_id or "")
        if lead and lead.is_open and lead.intent == Intent.not_target:
            self.route_queue.send(LeadReady(lead_id=lead.lead_id, reason="not_target"))
        self.store.timers.cancel(timer.timer_id)

    def _notify(self, staff_id: str, lead: Lead, kind: str, text: str, key: str) -> None:
        self.messenger.to_staff(
            staff_id, lead, f"{kind}:{lead.lead_id}:{key}:{staff_id}", kind, text,
            buttons=[[button("Беру", Button.accept, lead.lead_id)]],
        )  # fmt: skip
        failpoints.hit("escalate.after_send")

    def _sla_step(self, timer: Timer, now: datetime) -> None:
        lead = self.store.leads.get(timer.lead_id or "")
        if lead is None or not is_waiting_for_owner(lead) or not lead.owner:
            self.store.timers.cancel(timer.timer_id)
            return
        sla = self.business.sla
        label = lead_label(self.business, lead)
        if timer.step == 0:
            self.store.leads.change(lead.lead_id, _mark_breached, known=lead)
            metrics.add_metric(name="SlaBreaches", unit="Count", value=1)
            self._notify(
                lead.owner,
                lead,
                "sla_reminder",
                f"⏰ Лид ждёт ответа дольше SLA: {label}. Нажмите «Беру».",
                "0",
            )
            self.store.timers.reschedule(
                timer.timer_id, after_business_minutes(self.business, lead, now, sla.escalate_after_min), 1
            )
        elif timer.step == 1:
            owner = staff_name(self.business, lead.owner)
            for senior in seniors(self.business):
                # Keyed per owner: after a reassignment the senior must hear about the new owner too.
                self._notify(
                    senior,
                    lead,
                    "escalation",
                    f"🔺 Лид без ответа ({owner}): {label}. Приоритет повышен.",
                    f"1:{lead.owner}",
                )
            raised = self.store.leads.change(lead.lead_id, _raise_priority, known=lead)
            if raised is not None and raised.changed:
                self.crm.raise_priority(raised.lead)
            wait = max(sla.reassign_after_min - sla.escalate_after_min, 1)
            self.store.timers.reschedule(
                timer.timer_id, after_business_minutes(self.business, lead, now, wait), 2
            )
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
