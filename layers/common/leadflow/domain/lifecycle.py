"""The lead's life: which status may follow which, and every change a lead's status can undergo.

Each change is a pure function ``change(lead, …) -> Lead | None``: the lead as it should be
saved, or None when the change has nothing to do (already so, or not allowed from the lead's
status). ``LeadStore.mutate`` applies one with an optimistic, conditional write, so a redelivered
event that finds its change made does nothing — every change here is idempotent by shape.

What follows a change that closes a lead (the contact's next message opens a new lead, the
owner's capacity comes back, a visit is counted) is ``closes()``'s job to tell and the caller's
to do, in one place: ``leadflow.steps.leads.LeadChanges``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from leadflow.domain.models import CLOSED_STATUSES, Contact, Lead, LeadStatus, OfferedSlot

S = LeadStatus
# The allowed transitions, as data. Closed statuses are final: a client who writes after a
# visit, a cancel or a loss gets a new lead.
ALLOWED: dict[LeadStatus, frozenset[LeadStatus]] = {
    S.new: frozenset({S.qualifying, S.assigned, S.accepted, S.booked, S.not_target, S.lost, S.cancelled}),
    S.qualifying: frozenset({S.assigned, S.accepted, S.booked, S.not_target, S.lost, S.cancelled}),
    S.assigned: frozenset({S.accepted, S.booked, S.not_target, S.lost, S.cancelled}),
    S.accepted: frozenset({S.assigned, S.booked, S.not_target, S.lost, S.cancelled}),
    S.booked: frozenset({S.confirmed, S.visited, S.no_show, S.cancelled, S.lost, S.accepted}),
    S.confirmed: frozenset({S.booked, S.visited, S.no_show, S.cancelled, S.lost}),
    S.visited: frozenset(),
    S.no_show: frozenset(),
    S.cancelled: frozenset(),
    S.lost: frozenset(),
    S.not_target: frozenset(),
}
WAITING_FOR_OWNER = frozenset({S.new, S.qualifying, S.assigned})
BOOKED = frozenset({S.booked, S.confirmed})


def can_move(lead: Lead, to: LeadStatus) -> bool:
    return LeadStatus(lead.status) == to or to in ALLOWED[LeadStatus(lead.status)]


def closes(before: Lead | None, after: Lead) -> bool:
    """True when this change is the one that closed the lead (so its consequences run once)."""
    return after.status in CLOSED_STATUSES and (before is None or before.status not in CLOSED_STATUSES)


def _move(lead: Lead, to: LeadStatus) -> Lead | None:
    if lead.status == to or not can_move(lead, to):
        return None
    lead.status = to
    return lead


# --------------------------------------------------------------------------- qualifying and routing


def start_qualifying(lead: Lead) -> Lead:
    if lead.status == S.new:
        lead.status = S.qualifying
    return lead


def assign(
    lead: Lead, owner: str, reason: str, at: datetime, *, tags: list[str] = (),  # type: ignore[assignment]
    priority: str | None = None, callback_at: datetime | None = None,
) -> Lead | None:  # fmt: skip
    """A first owner by the rules; a lead that has one (an earlier delivery) keeps it."""
    if lead.owner or lead.status in CLOSED_STATUSES:
        return None
    lead.owner = owner
    lead.assignment_reason = reason
    if lead.status in WAITING_FOR_OWNER:
        lead.status = S.assigned
    lead.assigned_at = at
    lead.routed = True
    lead.tags = sorted(set(lead.tags) | set(tags))
    if priority:
        lead.priority = priority  # type: ignore[assignment]
    if callback_at:
        lead.callback_at = callback_at
    return lead


def reassign(lead: Lead, from_owner: str | None, to_owner: str, reason: str, at: datetime) -> Lead | None:
    """After an SLA ladder ran out: only while nobody took the lead and it still has that owner."""
    if lead.owner != from_owner or lead.accepted_at or lead.status in CLOSED_STATUSES:
        return None
    lead.owner = to_owner
    lead.assignment_reason = reason
    lead.assigned_at = at
    lead.tags = sorted({*lead.tags, "reassigned"})
    return lead


def transfer(lead: Lead, to_owner: str, at: datetime) -> Lead | None:
    """Staff hands the lead to a colleague: the new owner has to take it («Беру») again."""
    if lead.owner == to_owner or lead.status in CLOSED_STATUSES:
        return None
    lead.owner = to_owner
    lead.assignment_reason = "передан сотрудником"
    lead.assigned_at = at
    lead.accepted_at = None
    if lead.status == S.accepted:
        lead.status = S.assigned
    return lead


def close_not_target(lead: Lead) -> Lead | None:
    return _move(lead, S.not_target)


# --------------------------------------------------------------------------- staff actions


def accept(lead: Lead, staff_id: str, at: datetime) -> Lead | None:
    """«Беру»: whoever takes the lead owns it from now on (the caller checks they may)."""
    if lead.status in CLOSED_STATUSES or (lead.accepted_at and lead.owner == staff_id):
        return None
    if lead.accepted_at and lead.owner != staff_id:
        return None  # taken by somebody else already
    lead.accepted_at = at
    lead.owner = staff_id
    if lead.status in WAITING_FOR_OWNER:
        lead.status = S.accepted
    return lead


def snooze(lead: Lead, staff_id: str, at: datetime, minutes: int) -> Lead | None:
    """«Перезвоню позже»: taken, with a call-back time."""
    callback_at = at + timedelta(minutes=minutes)
    if lead.status in CLOSED_STATUSES or lead.callback_at == callback_at:
        return None
    if lead.accepted_at and lead.owner != staff_id:
        return None
    accept(lead, staff_id, at)
    lead.callback_at = callback_at
    return lead


def book(lead: Lead, appointment_at: datetime, staff_id: str | None, at: datetime) -> Lead | None:
    """A booking (or a move of one): the lead is taken by whoever booked it if nobody had."""
    if lead.appointment_at == appointment_at and lead.status in BOOKED:
        return None
    if lead.status in CLOSED_STATUSES:
        return None
    if lead.appointment_at is not None and lead.appointment_at != appointment_at:
        lead.calendar_sequence += 1  # a move: a calendar that imported the visit updates it
    lead.appointment_at = appointment_at
    lead.status = S.booked
    lead.accepted_at = lead.accepted_at or at
    lead.owner = lead.owner or staff_id
    return lead


def offer_slots(lead: Lead, slots: list[OfferedSlot]) -> Lead | None:
    """The slots offered to the client; the next message may pick one."""
    if lead.status in CLOSED_STATUSES or lead.offered == slots:
        return None
    lead.offered = slots
    return lead


def book_slot(
    lead: Lead, appointment_at: datetime, master: str | None, ref: str | None, at: datetime
) -> Lead | None:
    """A slot booked in the calendar: the visit, who it is with, the calendar's id; the offer is over."""
    if lead.status in CLOSED_STATUSES:
        return None
    if lead.appointment_at == appointment_at and lead.booked_master == master and lead.status in BOOKED:
        return None
    booked = book(lead, appointment_at, master, at) or lead
    booked.booked_master = master
    booked.booking_ref = ref
    booked.offered = []
    return booked


def book_from_crm(
    lead: Lead, appointment_at: datetime, master: str | None, ref: str | None, at: datetime
) -> Lead | None:
    """A visit time a manager set (or moved) in the CRM's booking field, with whose calendar it takes;
    ``ref`` None keeps the calendar's ref, "" clears it (the time could not be taken)."""
    if lead.status in CLOSED_STATUSES:
        return None
    if (
        lead.appointment_at == appointment_at
        and lead.status in BOOKED
        and lead.booked_in_crm
        and (master is None or lead.booked_master == master)
        and (ref is None or lead.booking_ref == (ref or None))
    ):
        return None
    booked = book(lead, appointment_at, None, at) or lead
    booked.booked_in_crm = True
    if master is not None:
        booked.booked_master = master
    if ref is not None:
        booked.booking_ref = ref or None  # "": the calendar holds no time for it
    booked.offered = []
    return booked


def mark_paid(lead: Lead, payment_id: str, amount: str | None, at: datetime) -> Lead | None:
    """The prepayment came (the provider said so): once — the same payment again changes nothing."""
    if lead.payment_id == payment_id and lead.paid_at is not None:
        return None
    lead.payment_id = payment_id
    lead.paid_amount = amount
    lead.paid_at = at
    return lead


def confirm(lead: Lead) -> Lead | None:
    return _move(lead, S.confirmed) if lead.status in BOOKED else None


def cancel(lead: Lead) -> Lead | None:
    return _move(lead, S.cancelled)


def ask_to_move(lead: Lead) -> Lead | None:
    """«Можно перенести?»: the visit stays booked until staff set the new time."""
    return _move(lead, S.booked) if lead.status == S.confirmed else None


def mark_visit(lead: Lead, came: bool) -> Lead | None:
    if lead.status not in BOOKED:
        return None
    return _move(lead, S.visited if came else S.no_show)


def mark_not_target(lead: Lead) -> Lead | None:
    return _move(lead, S.not_target)


def lose(lead: Lead, tag: str | None = None) -> Lead | None:
    if lead.status in CLOSED_STATUSES:
        return None
    lead.status = S.lost
    if tag and tag not in lead.tags:
        lead.tags = [*lead.tags, tag]
    return lead


def set_from_crm(lead: Lead, status: LeadStatus, at: datetime) -> Lead | None:
    """A status the CRM reports (a manager moved the record there): taken as long as it is allowed."""
    if lead.status == status or not can_move(lead, status):
        return None
    lead.status = status
    if status not in WAITING_FOR_OWNER:
        lead.accepted_at = lead.accepted_at or at
    return lead


# --------------------------------------------------------------------------- who answers the client


def take_over(lead: Lead, staff_id: str, at: datetime) -> Lead | None:
    """A staff member answered the client from the card: the assistant steps aside (and a question
    it could not answer has its answer now)."""
    if lead.handed_over and lead.accepted_at and not lead.question:
        return None
    lead.question = None
    lead.handed_over = True
    if not lead.accepted_at:
        lead.accepted_at = at
        lead.owner = lead.owner or staff_id
    if lead.status in WAITING_FOR_OWNER:
        lead.status = S.accepted
    return lead


def hand_back(lead: Lead) -> Lead | None:
    if not lead.handed_over:
        return None
    lead.handed_over = False
    return lead


def await_staff_answer(lead: Lead, question: str) -> Lead | None:
    """The assistant could not answer the client's question and said a person would."""
    if lead.question == question:
        return None
    lead.question = question
    return lead


def first_reply(lead: Lead, at: datetime) -> Lead | None:
    if lead.first_reply_at:
        return None
    lead.first_reply_at = at
    return lead


def anonymised(lead: Lead) -> Lead | None:
    """The lead without the person (152-FZ: retention ran out, or they asked to be forgotten): its
    numbers stay — channel, service, times, status, owner — for the owner's statistics."""
    if "anonymised" in lead.tags:
        return None
    lead.contact = Contact()
    lead.chat_id = "-"
    lead.media = []
    lead.attachments = []  # captions and transcripts are the person's words
    lead.builder = None
    lead.message_ids = []
    lead.inbound_at = []
    lead.recent_texts = []
    lead.question = None
    lead.possible_match = None
    lead.business_connection_id = None
    lead.card = None
    lead.tags = sorted({*lead.tags, "anonymised"})
    return lead
