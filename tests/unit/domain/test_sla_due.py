"""SLA due times: minutes by temperature, counted in the branch's business hours."""

from __future__ import annotations

from datetime import date

import pytest

from leadflow.business import BusinessConfig, load_business_config
from leadflow.domain.models import Lead
from leadflow.steps.escalate import sla_due
from tests.support.aws import SALON
from tests.support.builders import local


def business(**overrides) -> BusinessConfig:
    data = load_business_config(SALON).model_dump(mode="json", exclude_none=True)
    for section, values in overrides.items():
        if isinstance(data.get(section), dict):
            data[section] = {**data[section], **values}
        else:
            data[section] = values
    return BusinessConfig.model_validate(data)


def lead(temperature: str | None) -> Lead:
    now = local(2026, 3, 17, 12)
    return Lead(lead_id="L1", channel="telegram", chat_id="1", contact_id="C1", temperature=temperature,
                received_at=now, last_message_at=now)  # fmt: skip


@pytest.mark.parametrize(
    ("temperature", "due"),
    [
        ("hot", local(2026, 3, 17, 12, 15)),
        ("warm", local(2026, 3, 17, 13, 0)),
        # 24 business hours: 9 h left on Tuesday (to 21:00) + 12 h Wednesday + 3 h Thursday.
        ("cold", local(2026, 3, 19, 12, 0)),
        (None, local(2026, 3, 19, 12, 0)),  # not yet qualified counts as cold
    ],
)
def test_sla_by_temperature_in_business_hours(temperature, due):
    # Given the example salon (Mon–Fri 09–21) and the default SLA (hot 15, warm 60, cold 24 h)
    # When a lead is assigned on Tuesday at 12:00
    # Then its owner must answer by
    assert sla_due(business(), lead(temperature), local(2026, 3, 17, 12)) == due


def test_sla_minutes_come_from_config():
    custom = business(sla={"hot_min": 5, "warm_min": 30, "cold_min": 120})
    start = local(2026, 3, 17, 12)
    assert sla_due(custom, lead("hot"), start) == local(2026, 3, 17, 12, 5)
    assert sla_due(custom, lead("warm"), start) == local(2026, 3, 17, 12, 30)
    assert sla_due(custom, lead("cold"), start) == local(2026, 3, 17, 14, 0)


def test_a_question_stays_cold_but_has_its_own_sla():
    question = lead("cold").model_copy(update={"intent": "question"})
    start = local(2026, 3, 17, 12)
    assert sla_due(business(), question, start) == local(2026, 3, 17, 13, 0)  # sla.question_min: 60
    assert sla_due(business(sla={"question_min": 20}), question, start) == local(2026, 3, 17, 12, 20)
    assert sla_due(business(), lead("cold"), start) == local(2026, 3, 19, 12, 0)  # other cold leads: a day


def test_lead_at_night_is_due_after_opening():
    # Tuesday 22:00: closed until Wednesday 09:00
    assert sla_due(business(), lead("hot"), local(2026, 3, 17, 22)) == local(2026, 3, 18, 9, 15)
    # Saturday 19:50: ten minutes left on Saturday, the rest after Sunday's 10:00 opening
    assert sla_due(business(), lead("warm"), local(2026, 3, 21, 19, 50)) == local(2026, 3, 22, 10, 50)


def test_public_holidays_only_when_the_branch_closes_on_them():
    center = business().branches[0].model_dump(mode="json", exclude_none=True)
    closing = business(branches=[{**center, "closed_on_public_holidays": True}])
    evening = local(2026, 12, 31, 22)  # Thursday night before the New Year holidays (1–8 January)
    # A salon that works on holidays: due on 1 January (a Friday) at 09:15
    assert sla_due(business(), lead("hot"), evening) == local(2027, 1, 1, 9, 15)
    # A branch closed on public holidays: due after the holidays, Saturday 9 January, 10:15
    assert sla_due(closing, lead("hot"), evening) == local(2027, 1, 9, 10, 15)


def test_branch_day_off_is_skipped():
    center = business().branches[0].model_dump(mode="json", exclude_none=True)
    branch = {**center, "days_off": [date(2026, 3, 18).isoformat()]}
    # Wednesday is the branch's own day off: a Tuesday-night lead waits for Thursday
    assert sla_due(business(branches=[branch]), lead("hot"), local(2026, 3, 17, 22)) == local(
        2026, 3, 19, 9, 15
    )
