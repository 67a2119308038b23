"""Who owns a lead: rules, shifts, capacity, repeat clients, VIPs, round-robin, fallbacks.

Fair under concurrency: each routing group has an atomic ticket counter, so concurrent routes
draw different tickets and walk the same ordered list of eligible staff from different places;
capacity is taken with a conditional update, so nobody goes over it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from leadflow.business import BusinessConfig, RoutingRule, StaffMember
from leadflow.domain.calendar import Calendar
from leadflow.domain.models import Lead, StaffState
from leadflow.domain.rules import LeadFacts, candidates, first_matching_rule, works_in


class StaffLedger(Protocol):
    """What assignment needs to know and change about staff (adapters/store/staff.py keeps it)."""

    def state(self, staff_ids: list[str]) -> dict[str, StaffState]: ...

    def next_ticket(self, group: str) -> int: ...

    def take_lead(self, staff_id: str, lead_id: str, capacity: int | None = None) -> bool: ...


@dataclass
class Assignment:
    owner: str
    reason: str
    tags: list[str] = field(default_factory=list)
    priority: str | None = None
    callback_at: datetime | None = None  # off-hours: call back at opening
    owner_state: StaffState | None = None  # as read while choosing (its chat, so the card needs no read)


def shift_calendar(member: StaffMember, business: BusinessConfig) -> Calendar:
    """A member's own shifts (or the branch's hours), with the branch's zone, days off and holidays."""
    branch_calendar = Calendar.for_branch(business, member.branch)
    if member.shifts is None:
        return branch_calendar
    return Calendar(member.shifts, branch_calendar.tz, branch_calendar.branch)


def works_on(member: StaffMember, business: BusinessConfig, day: date) -> bool:
    """The member has a shift on ``day`` (local) and it is not one of their days off."""
    return day not in member.days_off and bool(shift_calendar(member, business).intervals(day))


def can_serve(member: StaffMember, service_id: str | None, business: BusinessConfig) -> bool:
    service = business.service(service_id)
    if service is None or not member.skills:
        return member.role == "specialist" or service is None
    return bool({service.id, service.group} & set(member.skills))


def on_shift(member: StaffMember, business: BusinessConfig, at: datetime, state: StaffState) -> bool:
    if state.is_off(at):
        return False
    return shift_calendar(member, business).is_open(at)


def _group_key(rule: RoutingRule, pool: list[StaffMember]) -> str:
    """One round-robin counter per rule *and* candidate list: one counter shared by hair and nails
    leads would hand every nails lead an odd ticket when the two alternate, and so to one person."""
    ids = ",".join(m.id for m in pool)
    return f"{rule.name}#{hashlib.sha256(ids.encode()).hexdigest()[:12]}"


def _first_shift_start(
    pool: list[StaffMember], business: BusinessConfig, after: datetime, state: dict[str, StaffState]
) -> datetime | None:
    """The earliest moment from ``after`` at which someone in the pool is on shift and not off."""
    starts = []
    for member in pool:
        begin = after
        off_until = state[member.id].off_until
        if off_until:
            begin = max(begin, off_until)
        start = shift_calendar(member, business).next_open(begin)
        if start is not None:
            starts.append(start)
    return min(starts, default=None)


def choose_owner(
    lead: Lead,
    facts: LeadFacts,
    business: BusinessConfig,
    staff: StaffLedger,
    now: datetime,
    previous_owner: str | None,
    exclude: frozenset[str] = frozenset(),
    like: str | None = None,
) -> Assignment:
    """``like``: a reassignment's former owner — when the lead names no service, the next owner
    shares a skill with them (a missed call a manicurist let wait goes to a manicurist, not the dentist)."""
    rule = first_matching_rule(lead, facts, business)
    if facts.vip and rule.match.vip is None:
        rule = RoutingRule(name="vip", assign_to=["manager"], tags=rule.tags, priority="high")
    calendar = Calendar.for_branch(business, facts.branch)
    pool = [m for m in candidates(rule, lead, business, facts) if m.id not in exclude]
    former = business.staff_member(like) if like else None
    if former is not None and former.skills and not lead.service:
        pool = [m for m in pool if not m.skills or set(m.skills) & set(former.skills)] or pool
    managers = [m for m in business.staff if m.role == "manager" and m.active and m.id not in exclude]
    managers.sort(key=lambda m: not works_in(m, facts.branch))  # the branch's own managers first
    asked_for = lead.booked_master or lead.master
    wanted = [m.id for m in pool + managers] + [p for p in (previous_owner, asked_for) if p]
    state = staff.state(wanted)
    at, callback_at = now, None
    if not calendar.is_open(now):
        # Off hours: whoever works when we open owns the lead and calls back then.
        at = calendar.next_open(now) or now
        callback_at = at

    def available(member: StaffMember, when: datetime) -> bool:
        return (
            on_shift(member, business, when, state[member.id])
            and state[member.id].open_leads < member.capacity
        )

    eligible = [m for m in pool if available(m, at)]
    day = lead.preferred_date
    day_note = ""
    if day is not None and day > at.astimezone(calendar.tz).date():
        # A visit on another day: whoever works that day (and can take a lead now) owns it.
        on_day = [
            m for m in pool
            if works_on(m, business, day) and not state[m.id].is_off(at) and state[m.id].open_leads < m.capacity
        ]  # fmt: skip
        if on_day:
            eligible, day_note = on_day, f"works on {day.isoformat()}; "
    if not eligible and callback_at is not None:
        # Nobody works at the opening itself (shifts start later): the first shift that does.
        first = _first_shift_start(pool, business, at, state)
        if first is not None:
            at = callback_at = first
            eligible = [m for m in pool if available(m, at)]

    def done(owner: str, reason: str) -> Assignment:
        return Assignment(
            owner,
            f"rule {rule.name}: {reason}",
            list(rule.tags),
            rule.priority,
            callback_at,
            state.get(owner),
        )

    note = ""
    named = business.staff_member(asked_for) if asked_for and asked_for not in exclude else None
    if named is not None:
        why = _why_not_named(named, lead, business, state[named.id], at)
        label = "booked with" if lead.booked_master else "client asked for"
        if why is None:
            if staff.take_lead(named.id, lead.lead_id, named.capacity):
                return done(named.id, f"{label} {named.name}")
            why = "at capacity"
        note = f"{label} {named.name}: {why}; "
    member = business.staff_member(previous_owner) if previous_owner not in exclude else None
    # A VIP goes to a manager even when a specialist served them last time.
    if member is not None and facts.vip and member.id not in {m.id for m in pool}:
        member, note = None, f"previous owner {previous_owner} is not a VIP owner; "
    if member is not None and not works_in(member, facts.branch):
        member, note = None, f"previous owner {previous_owner} works in another branch; "
    if member is not None:
        if member.active and on_shift(member, business, at, state[member.id]):
            if staff.take_lead(member.id, lead.lead_id, member.capacity):
                return done(member.id, "repeat client → previous owner")
            note = f"previous owner {member.id} at capacity; "
        else:
            note = f"previous owner {member.id} not on shift; "
    if eligible:
        ticket = staff.next_ticket(_group_key(rule, pool))
        for offset in range(len(eligible)):
            chosen = eligible[(ticket - 1 + offset) % len(eligible)]
            if staff.take_lead(chosen.id, lead.lead_id, chosen.capacity):
                how = day_note + "round-robin" + (" (next opening shift)" if callback_at else "")
                return done(chosen.id, note + how)
    fallback = _default_owner(
        business, exclude, [m for m in managers if on_shift(m, business, at, state[m.id])]
    )
    staff.take_lead(fallback, lead.lead_id)
    return done(fallback, note + "nobody eligible → default owner")


def _why_not_named(
    member: StaffMember, lead: Lead, business: BusinessConfig, state: StaffState, at: datetime
) -> str | None:
    """Why the master the client named cannot own the lead; None when she can."""
    if not member.active:
        return "not working here now"
    if not can_serve(member, lead.service, business):
        return "does not do this service"
    if lead.preferred_date is not None and not works_on(member, business, lead.preferred_date):
        return f"not on shift on {lead.preferred_date.isoformat()}"
    if state.is_off(at):
        return "off"
    return None


def _default_owner(
    business: BusinessConfig,
    exclude: frozenset[str] = frozenset(),
    managers_on_shift: Sequence[StaffMember] = (),
) -> str:
    """Never nobody: a manager on shift, else any manager, senior, specialist, else the owner."""
    if managers_on_shift:
        return managers_on_shift[0].id
    active = [s for s in business.staff if s.active and s.id not in exclude] or business.staff
    for role in ("manager", "senior", "specialist"):
        for member in active:
            if member.role == role:
                return member.id
    return "owner"  # a config with no staff: the business owner, shown as such
