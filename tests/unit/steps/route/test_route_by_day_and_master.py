"""Routing by the requested day and the named master: a Thursday visit goes to who works on
Thursday and can do the service; «к Оле» goes to Оля when she can, else the rule's choice with
the reason on the lead (and so on the card)."""

from __future__ import annotations

import pytest

from leadflow import clock
from tests.support.aws import aws_stack
from tests.support.builders import client_writes, route
from tests.unit.steps.score.test_booking_conversation import SALON, TUESDAY_10

# A third hair master who works on Tuesdays: "on shift now" alone would pick her for any day.
CONFIG = SALON.replace(
    "  - {id: marina, name: Марина, role: manager, branch: center}",
    '  - {id: nina, name: Нина, skills: [hair], branch: center, shifts: {tue: ["09:00-21:00"]}}\n'
    "  - {id: marina, name: Марина, role: manager, branch: center}",
)


@pytest.fixture
def salon():
    clock.freeze(TUESDAY_10)
    with aws_stack(CONFIG) as stack:
        yield stack


def test_a_thursday_visit_goes_to_who_works_on_thursday(salon) -> None:
    lead = client_writes(salon.store, "Хочу на стрижку в четверг в 15, 89138402765")
    routed = route(salon.store, lead.lead_id)
    assert routed.owner == "olga"  # Нина is on shift now, but not on Thursday; Вера only on Saturdays
    assert "works on 2026-12-03" in (routed.assignment_reason or "")


def test_a_named_master_gets_the_lead_when_she_works_that_day(salon) -> None:
    lead = client_writes(salon.store, "к Оле в четверг после 18 на стрижку, 89138402765")
    assert lead.master == "olga"
    routed = route(salon.store, lead.lead_id)
    assert routed.owner == "olga" and "client asked for Ольга" in (routed.assignment_reason or "")


def test_a_named_master_off_that_day_is_passed_over_with_the_reason(salon) -> None:
    lead = client_writes(salon.store, "можно к Вере в четверг на стрижку? 89138402765", chat="5002")
    assert lead.master == "vera"
    routed = route(salon.store, lead.lead_id)
    assert routed.owner == "olga"
    assert "client asked for Вера: not on shift on 2026-12-03" in (routed.assignment_reason or "")
    card = salon.store.conversation.outbound(lead.lead_id)
    (text,) = [m["text"] for m in card if m["kind"] == "lead_card"]
    assert "Просит мастера: Вера — не работает 03.12, лид у другого мастера" in text
