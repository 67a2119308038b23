"""Routing rules: ordered, first match wins, a default rule at the end; assign_to by id, role, skill."""

from __future__ import annotations

import pytest

from leadflow.domain.rules import LeadFacts, candidates, first_matching_rule
from tests.support.builders import business, lead

CFG = business(
    """
    timezone: Asia/Krasnoyarsk
    services:
      - {id: manicure, name: Маникюр, group: nails}
      - {id: pedicure, name: Педикюр, group: nails}
      - {id: haircut, name: Стрижка, group: hair}
      - {id: implant, name: Имплант, group: dental}
    branches: [{id: center}, {id: north}]
    staff:
      - {id: anna, name: Анна, skills: [nails], branch: center}
      - {id: katya, name: Катя, skills: [manicure], branch: north}
      - {id: olga, name: Ольга, skills: [hair], branch: center}
      - {id: ivan, name: Иван, skills: [dental]}
      - {id: any, name: Универсал}
      - {id: gone, name: Ушла, skills: [nails], active: false}
      - {id: marina, name: Марина, role: manager}
      - {id: elena, name: Елена, role: senior}
    routing:
      - {name: vip, match: {vip: true}, assign_to: [manager], priority: high}
      - {name: regulars, match: {repeat_client: true, service: hair}, assign_to: [olga], tags: [regular]}
      - {name: calls, match: {channel: call}, assign_to: [senior]}
      - {name: partner, match: {source: partner-site}, assign_to: [elena, marina]}
      - {name: dental, match: {service: dental}, assign_to: [dental], tags: [clinic]}
      - {name: promo, match: {utm_source: instagram, utm_campaign: [march8, spring]}, tags: [promo]}
      - {name: north, match: {branch: north}, tags: [north]}
      - {name: hot-questions, match: {temperature: hot, intent: question}, assign_to: [manager], priority: high}
    """
)


@pytest.mark.parametrize(
    ("fields", "facts", "rule"),
    [
        ({"service": "haircut"}, LeadFacts(vip=True, repeat_client=True), "vip"),  # first wins
        ({"service": "haircut"}, LeadFacts(repeat_client=True), "regulars"),
        ({"service": "manicure"}, LeadFacts(repeat_client=True), "default"),  # regulars needs hair
        ({"channel": "call", "service": "implant"}, LeadFacts(), "calls"),
        ({"source": "partner-site"}, LeadFacts(), "partner"),
        ({"service": "implant"}, LeadFacts(), "dental"),  # matched by group
        ({"utm": {"source": "instagram", "campaign": "spring"}}, LeadFacts(), "promo"),
        ({"utm": {"source": "instagram", "campaign": "winter"}}, LeadFacts(), "default"),
        ({"utm": {"source": "vk", "campaign": "march8"}}, LeadFacts(), "default"),
        ({}, LeadFacts(branch="north"), "north"),
        ({"temperature": "hot", "intent": "question"}, LeadFacts(), "hot-questions"),
        ({"temperature": "warm", "intent": "question"}, LeadFacts(), "default"),
        ({}, LeadFacts(), "default"),
    ],
)
def test_first_matching_rule_wins(fields, facts, rule):
    assert first_matching_rule(lead(**fields), facts, CFG).name == rule


def test_rule_tags_and_priority_come_with_the_rule():
    vip = first_matching_rule(lead(), LeadFacts(vip=True), CFG)
    dental = first_matching_rule(lead(service="implant"), LeadFacts(), CFG)
    assert (vip.priority, vip.tags) == ("high", [])
    assert (dental.priority, dental.tags) == (None, ["clinic"])


def _ids(rule_name: str, facts: LeadFacts | None = None, **fields) -> list[str]:
    facts = facts or LeadFacts()
    rule = first_matching_rule(lead(**fields), facts, CFG)
    assert rule.name == rule_name
    return [m.id for m in candidates(rule, lead(**fields), CFG, facts)]


def test_assign_to_by_role():
    assert _ids("vip", LeadFacts(vip=True)) == ["marina"]
    assert _ids("calls", channel="call") == ["elena"]


def test_assign_to_by_staff_ids():
    assert _ids("partner", source="partner-site") == ["elena", "marina"]


def test_assign_to_by_skill_group():
    assert _ids("dental", service="implant") == ["ivan"]


def test_default_rule_picks_specialists_with_the_skill_by_service_or_group():
    # katya's skill is the service itself, anna's its group; the inactive one is left out.
    assert _ids("default", service="manicure") == ["anna", "katya"]
    assert _ids("default", service="pedicure") == ["anna"]


def test_default_rule_without_a_skilled_specialist_falls_to_generalists():
    cfg = CFG.model_copy(update={"staff": [s for s in CFG.staff if s.id != "olga"]})
    rule = first_matching_rule(lead(service="haircut"), LeadFacts(), cfg)
    assert [m.id for m in candidates(rule, lead(service="haircut"), cfg, LeadFacts())] == ["any"]


def test_branch_limits_candidates_to_its_staff_and_unbranched_staff():
    facts = LeadFacts(branch="north")
    rule = first_matching_rule(lead(service="manicure"), facts, CFG)
    assert [m.id for m in candidates(rule, lead(service="manicure"), CFG, facts)] == ["katya"]
