"""route: give a qualified lead its owner by the rules, record it in the CRM, send the owner's
lead card, start the SLA clock — and take what else arrives on the route queue: staff actions
from Telegram, CRM status events, SMS delivery reports.

Every step is safe to repeat: the owner is set once (conditional save), the CRM id is stored
as soon as it is known, the card is an exactly-once outbound message, the SLA timer is only
created if absent. A redelivered LeadReady walks the steps and finds them done. The ready
leads of one batch go together, so their CRM push shares requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadflow import clock, failpoints
from leadflow.adapters.crm import Crm, CrmUnavailable
from leadflow.adapters.messenger import Messenger
from leadflow.adapters.queues import parse_queue_message
from leadflow.adapters.sqs_batch import BatchFrame, Poison
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain import lifecycle
from leadflow.domain.assignment import choose_owner
from leadflow.domain.cards import card_details_key, lead_label
from leadflow.domain.models import (
    CLOSED_STATUSES,
    ContactRecord,
    CrmEvent,
    DeliveryReport,
    Intent,
    Lead,
    LeadReady,
    StaffEvent,
)
from leadflow.domain.plans import seniors
from leadflow.domain.rules import LeadFacts
from leadflow.observability import logger, metrics
from leadflow.steps.cards import Cards
from leadflow.steps.crm_sync import CrmSync
from leadflow.steps.leads import LeadChanges
from leadflow.steps.media import forward_attachments
from leadflow.steps.sms_reports import SmsReports
from leadflow.steps.workspace import Workspace


@dataclass(frozen=True)
class Assigned:
    lead: Lead
    contact: ContactRecord | None = None  # read while choosing the owner
    owner_chat: str | None = None


class RouteStep:
    def __init__(
        self,
        store: Store,
        messenger: Messenger,
        crm: Crm,
        business: BusinessConfig,
        frame: BatchFrame,
        workspace: Workspace,
        crm_sync: CrmSync,
        sms_reports: SmsReports,
    ):
        self.store = store
        self.messenger = messenger
        self.crm = crm
        self.business = business
        self.frame = frame
        self.workspace = workspace
        self.crm_sync = crm_sync
        self.sms_reports = sms_reports
        self.leads = LeadChanges(store, business)
        self.cards = Cards(store, messenger, business)

    # ------------------------------------------------------------------ the batch
    def handle_event(self, event: dict, context: Any) -> dict:
        self.messenger.until_deadline(context)
        ready: dict[str, LeadReady] = {}
        redelivered = False
        for record in event.get("Records", []):
            try:
                message = parse_queue_message(record["body"])
            except ValueError:
                continue  # the per-record pass dead-letters it with the reason
            if isinstance(message, LeadReady) and message.reason not in ("booked", "updated"):
                ready.setdefault(message.lead_id, message)  # one lead twice in a batch is routed once
                redelivered |= self.frame.may_be_redelivered(record)
        failures = self.route(list(ready.values()), redelivered) if ready else {}

        def handle(message: Any, record: Any) -> None:
            if isinstance(message, LeadReady) and message.reason == "booked":
                self._booked_by_the_assistant(message.lead_id)
                return
            if isinstance(message, LeadReady) and message.reason == "updated":
                self._updated_by_the_client(message.lead_id)
                return
            if isinstance(message, LeadReady):
                if message.lead_id in failures:
                    raise failures[message.lead_id]  # Poison → DLQ now; anything else → retried
                return
            if isinstance(message, StaffEvent):
                self.workspace.handle(message)
            elif isinstance(message, CrmEvent):
                redraw = self.crm_sync.apply(message)
                if redraw is not None:
                    self.cards.refresh(redraw, f"{message.entity or 'crm'}:{message.event_id}")
            elif isinstance(message, DeliveryReport):
                self.sms_reports.apply(message)
            else:
                raise Poison(f"route does not take {message.type!r}")
            self.store.inbox.mark_done(message.event_id)

        return self.frame.process(event, context, handle)

    def _booked_by_the_assistant(self, lead_id: str) -> None:
        """The client picked a slot after the lead was routed: its CRM record says booked, its card
        shows the visit (both idempotent: a redelivery sets the same status, edits the same card)."""
        lead = self.store.leads.get(lead_id)
        if lead is None or not lead.appointment_at:
            return
        if lead.crm_id:
            self.crm.update_status(lead)
        self.cards.refresh(lead, f"booked:{lead_id}:{lead.appointment_at.isoformat()}")

    def _updated_by_the_client(self, lead_id: str) -> None:
        """The client gave what the card and the CRM record show (a phone after a hot lead went
        out): the record gets it, the card is edited in place, then the lead notes what they show.
        A redelivery sets the same fields and finds the edit claimed."""
        lead = self.store.leads.get(lead_id)
        if lead is None or lead.status in CLOSED_STATUSES:
            return
        shows = card_details_key(lead)
        if lead.card_shows == shows:
            return
        self.crm.update_details(lead, self.business)  # a lead not in the CRM yet gets them with its push
        self.cards.refresh(lead, f"details:{lead_id}:{lead.version}")  # A → B → A edits thrice
        failpoints.hit("route.after_details_shown")  # a retry finds the edit claimed
        self.store.leads.change(lead_id, lambda current: _showing(current, shows), known=lead)

    # ------------------------------------------------------------------ routing ready leads
    def route(self, batch: list[LeadReady], redelivered: bool = False) -> dict[str, Exception]:
        """Route a batch; returns what failed per lead id (retried or dead-lettered by the caller).
        One lead's failure never stops the others."""
        now = clock.now()
        failures: dict[str, Exception] = {}
        routed: list[Lead] = []
        known: dict[str, tuple[ContactRecord | None, str | None]] = {}  # read while assigning: no second read
        for ready in batch:
            try:
                assigned = self._assign(ready.lead_id, now, ready.contact)
            except Exception as exc:
                failures[ready.lead_id] = exc
                continue
            if assigned is not None:
                routed.append(assigned.lead)
                known[assigned.lead.lead_id] = (assigned.contact, assigned.owner_chat)
        failpoints.hit("route.after_assign")
        unpushed = [lead for lead in routed if lead.owner and self.crm.pending(lead)]
        pushed, crm_failures = self._push_to_crm(unpushed, redelivered)
        failures.update(crm_failures)
        failpoints.hit("route.after_crm_push")
        for lead in routed:
            if lead.lead_id in failures or not lead.owner:
                continue
            try:
                contact, owner_chat = known[lead.lead_id]
                current = self.cards.send(
                    pushed.get(lead.lead_id, lead), contact=contact, owner_chat=owner_chat, with_files=False
                )
                failpoints.hit("route.after_card_sent")
                self.leads.schedule_sla(current, now)
                # The client's files follow the card; a send that must wait (429) waits after the SLA
                # clock started: the redelivery finds the card sent and forwards what is left.
                forward_attachments(self.messenger, current)
            except Exception as exc:
                failures[lead.lead_id] = exc
        return failures

    def _assign(self, lead_id: str, now: datetime, known: ContactRecord | None = None) -> Assigned | None:
        """``known``: the client as the LeadReady carried them (no read of the contact)."""
        lead = self.store.leads.get(lead_id)
        if lead is None:
            raise Poison(f"lead {lead_id} does not exist")
        if lead.status in CLOSED_STATUSES:
            return None
        if lead.intent == Intent.not_target and not self.business.crm.push_not_target:
            self.leads.apply(lead_id, lifecycle.close_not_target, known=lead)
            return None
        if lead.owner:
            return Assigned(lead)  # assigned on an earlier delivery; finish the remaining steps
        if known is not None and known.contact_id == lead.contact_id:
            contact = known
        else:
            contact = self.store.contacts.get(lead.contact_id)
        facts = LeadFacts(
            repeat_client=contact.is_repeat_client or bool(lead.previous_owner),
            vip=contact.vip or (lead.contact.phone or "") in self.business.vip_phones,
            branch=lead.branch,
        )
        previous_owner = lead.previous_owner or contact.last_owner
        assignment = choose_owner(lead, facts, self.business, self.store.staff, now, previous_owner)
        saved = self.store.leads.change(
            lead_id,
            lambda current: lifecycle.assign(
                current,
                assignment.owner,
                assignment.reason,
                now,
                tags=assignment.tags,
                priority=assignment.priority,
                callback_at=assignment.callback_at,
            ),
            known=lead,
        )
        if saved is None or saved.lead.owner != assignment.owner:
            self.store.staff.release_lead(assignment.owner, lead_id)  # a concurrent route won
            return Assigned(saved.lead) if saved else None
        metrics.add_metric(name="LeadsAssigned", unit="Count", value=1)
        logger.info(
            "assigned", extra={"lead_id": lead_id, "owner": assignment.owner, "reason": assignment.reason}
        )
        state = assignment.owner_state
        return Assigned(
            saved.lead, contact, self.messenger.chat_of(assignment.owner, state) if state else None
        )

    def reassign(self, lead: Lead, now: datetime) -> str | None:
        """After an SLA ladder ran out: the next free specialist by the same rules (the service's
        skills included), never the owner who let it wait."""
        old_owner = lead.owner
        contact = self.store.contacts.get(lead.contact_id)
        facts = LeadFacts(repeat_client=False, vip=contact.vip, branch=lead.branch)
        exclude = frozenset({old_owner} if old_owner else set())
        assignment = choose_owner(
            lead, facts, self.business, self.store.staff, now, None, exclude, like=old_owner
        )
        if assignment.owner == old_owner:
            return None
        reason = f"reassigned after SLA ({assignment.reason})"
        saved = self.leads.apply(
            lead.lead_id,
            lambda current: lifecycle.reassign(current, old_owner, assignment.owner, reason, now),
        )
        if saved is None or saved.lead.owner != assignment.owner:
            self.store.staff.release_lead(assignment.owner, lead.lead_id)
            return None
        self.crm.reassign(saved.lead, self._crm_user(assignment.owner))
        current = self.cards.send(saved.lead, with_files=False)
        self.leads.schedule_sla(current, now)
        forward_attachments(self.messenger, current)  # the client's files follow the new card
        return assignment.owner

    def _crm_user(self, staff_id: str | None) -> str | None:
        member = self.business.staff_member(staff_id)
        return member.crm_user(self.crm.name) if member else None

    def _push_to_crm(
        self, leads: list[Lead], redelivered: bool
    ) -> tuple[dict[str, Lead], dict[str, Exception]]:
        """(the leads with their CRM ids, what must be retried). A lead the CRM refuses for good
        (a field the portal made required) still gets its owner's card and SLA clock: the refusal
        is shown on the card and told to the seniors, not dead-lettered."""
        if not leads:
            return {}, {}
        pairs = [(lead, self._crm_user(lead.owner)) for lead in leads]
        try:
            outcomes = self.crm.push(pairs, self.business, redelivered)
        except CrmUnavailable as exc:
            logger.warning("crm unavailable, will retry", extra={"crm": self.crm.name, "reason": str(exc)})
            metrics.add_metric(name="CrmRetries", unit="Count", value=len(leads))
            return {}, {lead.lead_id: exc for lead in leads}
        by_id = {lead.lead_id: lead for lead in leads}
        pushed: dict[str, Lead] = {}
        failed: dict[str, Exception] = {}
        for outcome in outcomes:
            lead = by_id[outcome.lead_id]
            if outcome.crm_id:
                crm_id, entity, mirrored = outcome.crm_id, outcome.entity, outcome.mirrored
                changed = self.store.leads.change(
                    lead.lead_id,
                    lambda current, c=crm_id, e=entity, m=mirrored: _set_crm_id(current, c, e, m),
                    known=lead,
                )
                pushed[lead.lead_id] = changed.lead if changed else lead
            elif outcome.error and outcome.retryable:
                failed[lead.lead_id] = CrmUnavailable(f"CRM: {outcome.error}")
            elif outcome.error:
                logger.warning("crm refused lead", extra={"lead_id": lead.lead_id, "error": outcome.error})
                metrics.add_metric(name="CrmRefused", unit="Count", value=1)
                changed = self.store.leads.change(
                    lead.lead_id,
                    lambda current, e=outcome.error, m=outcome.mirrored: _set_crm_error(current, e, m),
                    known=lead,
                )
                pushed[lead.lead_id] = changed.lead if changed else lead
                self._tell_seniors_crm_refused(pushed[lead.lead_id], outcome.error)
        return pushed, failed

    def _tell_seniors_crm_refused(self, lead: Lead, error: str) -> None:
        text = f"⚠️ CRM не приняла лид: {error[:300]}. Лид ведётся в leadflow; проверьте настройки CRM. {lead_label(self.business, lead)}"
        for senior in seniors(self.business):
            self.messenger.to_staff(senior, lead, f"crm_refused:{lead.lead_id}:{senior}", "crm_problem", text)


def _set_crm_id(lead: Lead, crm_id: str, entity: str | None, mirrored: bool = False) -> Lead | None:
    if lead.crm_id == crm_id and (lead.mirrored or not mirrored):
        return None
    lead.crm_id = crm_id
    lead.crm_entity = entity  # type: ignore[assignment]
    lead.crm_error = None
    lead.mirrored = lead.mirrored or mirrored
    return lead


def _set_crm_error(lead: Lead, error: str, mirrored: bool = False) -> Lead | None:
    if lead.crm_error == error and (lead.mirrored or not mirrored):
        return None
    lead.crm_error = error[:500]
    lead.mirrored = lead.mirrored or mirrored
    return lead


def _showing(lead: Lead, shows: str) -> Lead | None:
    if lead.card_shows == shows:
        return None
    lead.card_shows = shows
    return lead
