"""Route a qualified lead: owner by rules, the CRM record, the owner's lead card, the SLA timer.

Every step is safe to repeat: the owner is set once (conditional save), the CRM id is stored
as soon as it is known, the card is an exactly-once outbound message, the SLA timer is only
created if absent. A redelivered LeadReady walks the steps and finds them done.
"""

from __future__ import annotations

from datetime import datetime

from leadflow import clock
from leadflow.adapters.crm import Crm, CrmUnavailable
from leadflow.adapters.outbound import Outbound
from leadflow.adapters.sqs_batch import Poison
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain.assignment import choose_owner
from leadflow.domain.models import CLOSED_STATUSES, Intent, Lead, LeadReady, LeadStatus
from leadflow.domain.rules import LeadFacts
from leadflow.observability import logger, metrics
from leadflow.steps.escalate import schedule_sla
from leadflow.steps.workspace import send_lead_card


class Router:
    def __init__(self, store: Store, outbound: Outbound, crm: Crm, business: BusinessConfig):
        self.store = store
        self.outbound = outbound
        self.crm = crm
        self.business = business

    def route(self, batch: list[LeadReady], redelivered: bool = False) -> dict[str, Exception]:
        """Route a batch; returns what failed per lead id (retried or dead-lettered by the caller).
        One lead's failure never stops the others."""
        now = clock.now()
        failures: dict[str, Exception] = {}
        routed: list[Lead] = []
        for ready in batch:
            try:
                lead = self._assign(ready.lead_id, now)
            except Exception as exc:
                failures[ready.lead_id] = exc
                continue
            if lead is not None:
                routed.append(lead)
        unpushed = [lead for lead in routed if lead.crm_id is None and lead.owner]
        failures.update(self._push_to_crm(unpushed, redelivered))
        for lead in routed:
            if lead.lead_id in failures or not lead.owner:
                continue
            try:
                current = self.store.leads.get(lead.lead_id) or lead
                send_lead_card(self.store, self.outbound, self.business, current)
                schedule_sla(self.store, self.business, current, now)
            except Exception as exc:
                failures[lead.lead_id] = exc
        return failures

    def _assign(self, lead_id: str, now: datetime) -> Lead | None:
        lead = self.store.leads.get(lead_id)
        if lead is None:
            raise Poison(f"lead {lead_id} does not exist")
        if lead.status in CLOSED_STATUSES:
            return None
        if lead.intent == Intent.not_target and not self.business.crm.push_not_target:
            self.store.leads.mutate(lead_id, lambda current: _close_not_target(current))
            self.store.contacts.close_lead(lead.contact_id, lead_id)
            return None
        if lead.owner:
            return lead  # assigned on an earlier delivery; finish the remaining steps
        contact = self.store.contacts.get(lead.contact_id)
        previous_owner = contact.get("last_owner")
        facts = LeadFacts(
            repeat_client=int(contact.get("leads", 0)) > 1 or bool(previous_owner),
            vip=bool(contact.get("vip")) or (lead.contact.phone or "") in self.business.vip_phones,
            branch=lead.branch,
        )
        assignment = choose_owner(lead, facts, self.business, self.store.staff, now, previous_owner)

        def apply(current: Lead) -> Lead | None:
            if current.owner:
                return None
            current.owner = assignment.owner
            current.assignment_reason = assignment.reason
            current.status = LeadStatus.assigned
            current.assigned_at = now
            current.routed = True
            current.tags = sorted(set(current.tags) | set(assignment.tags))
            if assignment.priority:
                current.priority = assignment.priority  # type: ignore[assignment]
            if assignment.callback_at:
                current.callback_at = assignment.callback_at
            return current

        saved = self.store.leads.mutate(lead_id, apply)
        if saved is None or saved.owner != assignment.owner:
            self.store.staff.release_lead(assignment.owner)  # a concurrent route won
        else:
            remembered = {"last_branch": lead.branch} if lead.branch else {}
            self.store.contacts.update(lead.contact_id, last_owner=assignment.owner, **remembered)
            metrics.add_metric(name="LeadsAssigned", unit="Count", value=1)
            logger.info(
                "assigned", extra={"lead_id": lead_id, "owner": assignment.owner, "reason": assignment.reason}
            )
        return saved

    def reassign(self, lead: Lead, now: datetime) -> str | None:
        """After an SLA ladder ran out: the next free specialist by the same rules."""
        old_owner = lead.owner
        contact = self.store.contacts.get(lead.contact_id)
        facts = LeadFacts(repeat_client=False, vip=bool(contact.get("vip")), branch=lead.branch)
        exclude = frozenset({old_owner} if old_owner else set())
        assignment = choose_owner(lead, facts, self.business, self.store.staff, now, None, exclude)
        if assignment.owner == old_owner:
            self.store.staff.release_lead(assignment.owner)
            return None

        def apply(current: Lead) -> Lead | None:
            if current.owner != old_owner or current.accepted_at:
                return None
            current.owner = assignment.owner
            current.assignment_reason = f"reassigned after SLA ({assignment.reason})"
            current.assigned_at = now
            current.tags = sorted({*current.tags, "reassigned"})
            return current

        saved = self.store.leads.mutate(lead.lead_id, apply)
        if saved is None or saved.owner != assignment.owner:
            self.store.staff.release_lead(assignment.owner)
            return None
        if old_owner:
            self.store.staff.release_lead(old_owner)
        member = self.business.staff_member(assignment.owner)
        self.crm.reassign(saved, str(member.bitrix24_user_id) if member and member.bitrix24_user_id else None)
        send_lead_card(self.store, self.outbound, self.business, saved)
        schedule_sla(self.store, self.business, saved, now)
        return assignment.owner

    def _push_to_crm(self, leads: list[Lead], redelivered: bool = False) -> dict[str, Exception]:
        if not leads:
            return {}
        owners = [self.business.staff_member(lead.owner) for lead in leads]
        pairs = [
            (lead, str(m.bitrix24_user_id) if m and m.bitrix24_user_id else None)
            for lead, m in zip(leads, owners, strict=True)
        ]
        try:
            outcomes = self.crm.push(pairs, self.business, redelivered)
        except CrmUnavailable as exc:
            logger.warning("crm unavailable, will retry", extra={"crm": self.crm.name, "reason": str(exc)})
            metrics.add_metric(name="CrmRetries", unit="Count", value=len(leads))
            return {lead.lead_id: exc for lead in leads}
        failed: dict[str, Exception] = {}
        for outcome in outcomes:
            if outcome.crm_id:
                crm_id, entity = outcome.crm_id, outcome.entity
                self.store.leads.mutate(
                    outcome.lead_id, lambda current, c=crm_id, e=entity: _set_crm_id(current, c, e)
                )
            elif outcome.error:
                logger.warning("crm refused lead", extra={"lead_id": outcome.lead_id, "error": outcome.error})
                failed[outcome.lead_id] = (CrmUnavailable if outcome.retryable else Poison)(
                    f"CRM: {outcome.error}"
                )
        return failed


def _set_crm_id(lead: Lead, crm_id: str, entity: str | None) -> Lead | None:
    if lead.crm_id == crm_id:
        return None
    lead.crm_id = crm_id
    lead.crm_entity = entity  # type: ignore[assignment]
    return lead


def _close_not_target(lead: Lead) -> Lead | None:
    if lead.status == LeadStatus.not_target:
        return None
    lead.status = LeadStatus.not_target
    return lead
