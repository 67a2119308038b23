"""«Что будет, если» counts SLA breaches: on a hand-built week of leads, the exact leads the draft
would let wait past their SLA — an owner whose shift starts after the SLA ends, or a default owner
given a lead beyond their capacity."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from leadflow.business import parse_business_config
from leadflow.domain.whatif import replay
from tests.support.builders import lead

MSK = ZoneInfo("Europe/Moscow")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _config(extra: str = "") -> str:
    def week(hours: str) -> str:
        return "{" + ", ".join(f'{d}: ["{hours}"]' for d in DAYS) + "}"

    return f"""
timezone: Europe/Moscow
services:
  - {{id: manicure, name: Маникюр, group: nails, keywords: [маникюр]}}
hours: {week("10:00-20:00")}
staff:
  - {{id: anna, name: Анна, skills: [nails], capacity: 10, shifts: {week("10:00-15:00")}}}
  - {{id: katya, name: Катя, skills: [nails], capacity: 10, shifts: {week("15:00-20:00")}}}
  - {{id: marina, name: Марина, role: manager, capacity: 1}}
sla: {{hot_min: 15, warm_min: 60, cold_min: 1440}}
{extra}"""


NOW = parse_business_config(_config())
# The draft sends hot leads to Katya, who works evenings only.
DRAFT = parse_business_config(
    _config("routing:\n  - {name: hot-to-katya, match: {temperature: [hot]}, assign_to: [katya]}\n")
)


def _lead(lead_id: str, local: str, temperature: str):
    at = datetime.fromisoformat(local).replace(tzinfo=MSK)
    return lead(lead_id, service="manicure", temperature=temperature, status="assigned",
                received_at=at, last_message_at=at)  # fmt: skip


LEADS = [
    _lead("H1", "2026-03-16T11:00", "hot"),  # now Anna; draft: Katya is not on shift → Марина (1 of 1)
    _lead("H2", "2026-03-16T11:30", "hot"),  # draft: Марина again, her 2nd lead with capacity 1 → late
    _lead("W1", "2026-03-16T14:30", "warm"),  # Anna under both: on shift, answers at once
    _lead("H3", "2026-03-16T21:00", "hot"),  # closed: SLA ends Tue 10:15; the draft's Katya starts 15:00
]


def test_the_draft_breaches_the_sla_of_exactly_the_leads_it_leaves_waiting():
    report = replay(LEADS, NOW, DRAFT).as_dict()
    assert report["sla_breach"] == {"now": 0, "draft": 2, "draft_leads": ["H2", "H3"]}
    assert report["changed_owner"] == 3
    assert report["load"] == {
        "anna": {"now": 4, "draft": 1},
        "katya": {"now": 0, "draft": 1},
        "marina": {"now": 0, "draft": 2},
    }
    assert report["to_default_owner"] == {"now": 0, "draft": 2}
    assert report["night_callback"] == {"now": 1, "draft": 1}


def test_a_longer_sla_in_the_draft_clears_the_breach_its_shifts_made():
    # With 6 hours for a hot lead, Katya's 15:00 start is within Tuesday's SLA (10:00 + 6 h).
    relaxed = parse_business_config(
        _config(
            "routing:\n  - {name: hot-to-katya, match: {temperature: [hot]}, assign_to: [katya]}\n"
        ).replace("hot_min: 15", "hot_min: 360")
    )
    assert replay(LEADS, NOW, relaxed).as_dict()["sla_breach"]["draft_leads"] == ["H2"]


def test_the_rules_in_force_against_themselves_show_no_breach_here():
    same = replay(LEADS, NOW, NOW).as_dict()
    assert same["sla_breach"] == {"now": 0, "draft": 0, "draft_leads": []}
