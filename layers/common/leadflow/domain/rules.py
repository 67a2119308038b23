"""Routing rules: ordered, first match wins; a default rule always exists at the end."""

from __future__ import annotations

from dataclasses import dataclass

from leadflow.business import BusinessConfig, RoutingRule, StaffMember
from leadflow.domain.models import Lead

DEFAULT_RULE = RoutingRule(name="default")


@dataclass(frozen=True)
class LeadFacts:
    """What a rule can match on, beyond the lead itself."""

    repeat_client: bool = False
    vip: bool = False
    branch: str | None = None


def _matches(rule: RoutingRule, lead: Lead, facts: LeadFacts, business: BusinessConfig) -> bool:
    m = rule.match
    service = business.service(lead.service)
    checks = [
        (m.channel, lead.channel),
        (m.source, lead.source),
        (m.utm_source, lead.utm.source),
        (m.utm_campaign, lead.utm.campaign),
        (m.branch, facts.branch),
        (m.temperature, lead.temperature),
        (m.intent, lead.intent),
    ]
    for allowed, value in checks:
        if allowed is not None and value not in allowed:
            return False
    if m.service is not None:
        names = {lead.service, service.group if service else None} - {None}
        if not names & set(m.service):
            return False
    if m.repeat_client is not None and m.repeat_client != facts.repeat_client:
        return False
    return not (m.vip is not None and m.vip != facts.vip)


def works_in(member: StaffMember, branch: str | None) -> bool:
    """Staff without a branch work in every branch; a lead without one can go to anybody."""
    return branch is None or member.branch in (None, branch)


def first_matching_rule(lead: Lead, facts: LeadFacts, business: BusinessConfig) -> RoutingRule:
    return next((r for r in business.routing if _matches(r, lead, facts, business)), DEFAULT_RULE)


def candidates(
    rule: RoutingRule, lead: Lead, business: BusinessConfig, facts: LeadFacts
) -> list[StaffMember]:
    """Active staff the rule's action names (ids, roles, skills), in a stable order.

    With no ``assign_to``: specialists whose skills cover the lead's service (or its group);
    specialists with no skills listed take anything.
    """
    active = [s for s in business.staff if s.active and works_in(s, facts.branch)]
    if rule.assign_to:
        chosen = [
            s
            for s in active
            if s.id in rule.assign_to or s.role in rule.assign_to or set(s.skills) & set(rule.assign_to)
        ]
        return sorted(chosen, key=lambda s: s.id)
    service = business.service(lead.service)
    wanted = {lead.service, service.group if service else None} - {None}
    specialists = [s for s in active if s.role == "specialist"]
    skilled = [s for s in specialists if wanted & set(s.skills)] if wanted else []
    return sorted(skilled or [s for s in specialists if not s.skills] or specialists, key=lambda s: s.id)
