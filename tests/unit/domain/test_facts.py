"""A lead's fact as the stats table keeps it: what the numbers and the list need, nothing lost on
the way through storage, and a record of another format refused rather than misread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadflow.domain.facts import LeadFact, fact_of
from tests.support.builders import lead

AT = datetime(2026, 3, 16, 3, 0, 0, 123456, tzinfo=UTC)


def test_a_full_lead_s_fact_survives_storage_exactly():
    full = lead("L1", received_at=AT, status="booked", owner="anna", branch="center", source="site",
                utm={"source": "yandex", "campaign": "spring"}, service="manicure", tags=["sla_breached"],
                first_reply_at=AT + timedelta(seconds=12.5), accepted_at=AT + timedelta(minutes=3),
                appointment_at=AT + timedelta(days=1), contact={"name": "Ирина", "phone": "+79135550101"},
                version=4)  # fmt: skip
    fact = fact_of(full)
    assert (fact.first_reply_s, fact.accept_s, fact.appointment, fact.sla_breached) == (
        12.5,
        180.0,
        True,
        True,
    )
    assert (fact.utm_source, fact.campaign, fact.name, fact.version) == ("yandex", "spring", "Ирина", 4)
    assert LeadFact.from_json(fact.to_json()) == fact


def test_a_bare_lead_s_fact_is_short_and_survives_too():
    fact = fact_of(lead("L2", received_at=AT, intent=None, temperature=None))
    assert LeadFact.from_json(fact.to_json()) == fact
    assert len(fact.to_json()) < 80


@pytest.mark.parametrize("text", ['{"lead_id": "L1"}', '[2, "L1", 0, "2026-03-16T03:00:00+00:00"]', "[]"])
def test_a_record_of_another_format_is_refused(text):
    with pytest.raises(ValueError):
        LeadFact.from_json(text)
