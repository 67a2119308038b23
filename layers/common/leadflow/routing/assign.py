"""Who owns a lead: rules, shifts, capacity, repeat clients, VIPs, round-robin, fallbacks.

Fair under concurrency: each routing group has an atomic ticket counter, so concurrent routes
draw different tickets and walk the same ordered list of eligible staff from different places;
capacity is taken with a conditional update, so nobody goes over it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from leadflow.config import BusinessConfig, RoutingRule, StaffMember
from leadflow.models import Lead
from leadflow.routing.hours import Calendar
from leadflow.routing.rules import LeadFacts, candidates, first_matching_rule
from leadflow.store.staff import StaffStore

UNLIMITED = 10**6


@dataclass
class Assignment:
    owner: str
    reason: str
    tags: list[str] = field(default_factory=list)
    priority: str | None = None
    callback_at: datetime | None = None  # off-hours: call back at opening


def on_shift(member: StaffMember, business: BusinessConfig, at: datetime, state: dict) -> bool:
    off_until = state.get("off_until")
    if off_until and datetime.fromisoformat(off_until) > at:
        return False
    branch_calendar = Calendar.for_branch(business, member.branch)
    if member.shifts is None:
        return branch_calendar.is_open(at)
    return Calendar(member.shifts, branch_calendar.tz, branch_calendar.branch).is_open(at)


def choose_owner(
    lead: Lead,
    facts: LeadFacts,
    business: BusinessConfig,
    staff: StaffStore,
    now: datetime,
    previous_owner: str | None,
    exclude: frozenset[str] = frozenset(),
) -> Assignment:
    rule = first_matching_rule(lead, facts, business)
    if facts.vip and rule.match.vip is None:
        rule = RoutingRule(name="vip", assign_to=["manager"], tags=rule.tags, priority="high")
    calendar = Calendar.for_branch(business, facts.branch)
    at = now
    callback_at = None
    if not calendar.is_open(now):
        at = calendar.next_open(now) or now
        callback_at = at
    pool = [m for m in candidates(rule, lead, business, facts) if m.id not in exclude]
    state = staff.state([m.id for m in pool] + ([previous_owner] if previous_owner else []))
    eligible = [
        m
        for m in pool
        if on_shift(m, business, at, state[m.id]) and state[m.id].get("open_leads", 0) < m.capacity
    ]

    def done(owner: str, reason: str) -> Assignment:
        return Assignment(owner, f"rule {rule.name}: {reason}", list(rule.tags), rule.priority, callback_at)

    if previous_owner and previous_owner not in exclude:
        member = business.staff_member(previous_owner)
        if (
            member
            and member.active
            and on_shift(member, business, at, state[previous_owner])
            and staff.take_lead(member.id, member.capacity)
        ):
            return done(member.id, "repeat client → previous owner")
    if eligible:
        ticket = staff.next_ticket(rule.name)
        for offset in range(len(eligible)):
            member = eligible[(ticket - 1 + offset) % len(eligible)]
            if staff.take_lead(member.id, member.capacity):
                how = "round-robin" + (" (next opening shift)" if callback_at else "")
                return done(member.id, how)
    fallback = _default_owner(business, exclude)
    staff.take_lead(fallback, UNLIMITED)
    return done(fallback, "nobody eligible → default owner")


def _default_owner(business: BusinessConfig, exclude: frozenset[str] = frozenset()) -> str:
    active = [s for s in business.staff if s.active and s.id not in exclude] or business.staff
    for role in ("manager", "senior", "specialist"):
        for member in active:
            if member.role == role:
                return member.id
    return "owner"  # a config with no staff: the business owner, shown as such
