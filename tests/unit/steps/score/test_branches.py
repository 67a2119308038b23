"""A business with two branches: which one a lead belongs to, the question when nobody said, and
routing, off-hours and SLA by that branch's staff and hours."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from leadflow import clock
from leadflow.business import ConfigError
from leadflow.domain.assignment import choose_owner
from leadflow.domain.branches import branch_for
from leadflow.domain.models import Contact, InboundMessage
from leadflow.domain.plans import sla_due
from leadflow.domain.rules import LeadFacts
from leadflow_local.functions import invoke
from leadflow_local.stack import sqs_event
from tests.support.builders import KRS, business, lead, moment, only_lead, ready_messages, replies, score


def every_day(hours: str) -> str:
    return (
        "{" + ", ".join(f'{d}: ["{hours}"]' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")) + "}"
    )


YAML = f"""
timezone: Asia/Krasnoyarsk
services:
  - {{id: manicure, name: Маникюр, group: nails, keywords: [маникюр]}}
branches:
  - id: center
    name: Центр
    phones: ["8 (495) 123-45-67"]
    aliases: [Тверская]
    hours: {every_day("09:00-21:00")}
  - id: khimki
    name: Химки
    phones: ["+7 495 765-43-21"]
    accounts: ["vk:218734561"]
    hours: {every_day("10:00-18:00")}
staff:
  - {{id: anna, name: Анна, skills: [nails], branch: center}}
  - {{id: katya, name: Катя, skills: [nails], branch: khimki}}
  - {{id: marina, name: Марина, role: manager, branch: center}}
  - {{id: vera, name: Вера, role: manager, branch: khimki}}
"""
CFG = business(YAML)
SATURDAY_11 = moment(KRS, "2026-03-14 11:00")


def client_message(n: int, text: str, at: datetime = SATURDAY_11, **extra) -> InboundMessage:
    return InboundMessage(
        message_id=f"telegram:{n}",
        channel="telegram",
        chat_id="4242",
        contact=Contact(name="Ира", channel_user_id="4242"),
        text=text,
        received_at=at,
        **extra,
    )


def route_ready(aws) -> None:
    records = [
        {"MessageId": f"r{i}", "ReceiptHandle": "rh", "Body": m["Body"]}
        for i, m in enumerate(aws.receive("RouteQueue"))
    ]
    invoke("route", sqs_event(records, "RouteQueue"))


class TestConfig:
    def test_branch_numbers_are_stored_as_leads_store_numbers(self):
        assert [b.phones for b in CFG.branches] == [["+74951234567"], ["+74957654321"]]

    def test_an_account_must_say_its_channel(self):
        with pytest.raises(ConfigError, match=r"branches #2\.accounts.*line \d+.*'vk:<group id>'"):
            business(YAML.replace('"vk:218734561"', '"218734561"'))

    def test_one_number_cannot_belong_to_two_branches(self):
        with pytest.raises(
            ConfigError, match=r"branches #2\.phones #1 \(line \d+\): .*already branch 'center'"
        ):
            business(YAML.replace('"+7 495 765-43-21"', '"+74951234567"'))


class TestWhichBranch:
    @pytest.mark.parametrize(
        ("extra", "expected"),
        [
            ({"branch": "khimki"}, "khimki"),  # ?branch=khimki on the webhook URL
            ({"branch": "Химки"}, "khimki"),  # a form's «Филиал» field
            ({"branch": "салон на Тверской"}, "center"),
            ({"recipient": "+74957654321"}, "khimki"),  # called or wrote to its number
            ({"recipient": "vk:218734561"}, "khimki"),  # its VK community
            ({"recipient": "+74950000000"}, None),
            ({"branch": "khimki", "recipient": "+74951234567"}, "khimki"),  # what the sender named wins
        ],
    )
    def test_by_what_the_sender_named_or_the_client_reached(self, extra, expected):
        assert branch_for(CFG, client_message(1, "Хочу на маникюр", **extra)) == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Можно на Тверской в субботу?", "center"),
            ("запишите в Химках", "khimki"),
            ("в центре есть окно?", "center"),
            ("я ходила на Тверскую, а теперь удобнее в Химках", None),  # two named: not a guess
            ("хочу на маникюр", None),
        ],
    )
    def test_by_a_branch_the_client_names_in_any_word_form(self, text, expected):
        assert branch_for(CFG, client_message(1, text)) == expected

    def test_a_business_with_one_branch_has_nothing_to_tell_apart(self):
        one = business(YAML.split("  - id: khimki")[0] + "staff: []\n")
        assert branch_for(one, client_message(1, "в центре", branch="center")) is None


class TestConversation:
    def test_the_client_is_asked_which_branch_and_the_lead_goes_to_its_staff(self, aws):
        aws.push_config(YAML)
        clock.freeze(SATURDAY_11)
        # Given a booking with everything but the branch (Wednesday: warm, so it waits)
        score(aws, client_message(1, "Хочу на маникюр в среду в 15:00, мой номер +79138402765"))
        assert "В какой филиал вам удобнее: «Центр» или «Химки»?" in replies(aws)[-1]["text"]
        assert ready_messages(aws) == []
        # When she answers
        clock.advance(timedelta(minutes=1))
        score(aws, client_message(2, "Давайте в Химках", at=clock.now()))
        # Then the lead is Khimki's, complete, and owned by Khimki's manicurist
        assert "филиал" not in replies(aws)[-1]["text"]
        assert only_lead(aws).branch == "khimki"
        route_ready(aws)
        routed = only_lead(aws)
        assert routed.owner == "katya"
        assert (
            aws.store.contacts.get(routed.contact_id).last_lead_id == routed.lead_id
        )  # her next lead starts here

    def test_a_branch_answered_after_routing_is_taken_and_not_asked_again(self, aws):
        # Issue 15, bug 2: a hot lead is routed before the branch is known; the answer was ignored.
        aws.push_config(YAML)
        clock.freeze(SATURDAY_11)
        score(aws, client_message(1, "Хочу на маникюр сегодня в 15:00, мой номер +79138402765"))
        assert "В какой филиал" in replies(aws)[-1]["text"]
        route_ready(aws)
        assert only_lead(aws).routed and only_lead(aws).branch is None
        clock.advance(timedelta(minutes=1))
        score(aws, client_message(2, "лучше в Химках", at=clock.now()))
        assert only_lead(aws).branch == "khimki"
        clock.advance(timedelta(minutes=1))
        score(aws, client_message(3, "спасибо, жду подтверждения", at=clock.now()))
        assert "филиал" not in replies(aws)[-1]["text"]

    def test_a_message_to_a_branch_number_needs_no_question(self, aws):
        aws.push_config(YAML)
        clock.freeze(SATURDAY_11)
        score(aws, client_message(1, "Хочу на маникюр в среду в 15:00", recipient="+74951234567"))
        assert only_lead(aws).branch == "center"
        assert "филиал" not in replies(aws)[-1]["text"]

    def test_a_returning_client_starts_at_her_last_branch(self, aws):
        aws.push_config(YAML)
        clock.freeze(SATURDAY_11)
        score(aws, client_message(1, "Маникюр в среду в 15:00 в Химках, +79138402765"))
        route_ready(aws)
        # Three weeks later she writes again without naming a branch
        clock.advance(timedelta(days=21))
        score(aws, client_message(2, "Хочу снова на маникюр в пятницу в 12:00", at=clock.now()))
        newest = max(
            (aws.store.leads.get(i["lead_id"]) for i in aws.store.leads.table.scan()["Items"]),
            key=lambda lead: lead.received_at,
        )
        assert newest.branch == "khimki"
        assert "филиал" not in replies(aws)[-1]["text"]


class TestRoutingByBranch:
    def test_a_previous_owner_from_another_branch_is_passed_over(self, aws):
        clock.freeze(SATURDAY_11)
        facts = LeadFacts(repeat_client=True, branch="khimki")
        assignment = choose_owner(lead(service="manicure"), facts, CFG, aws.store.staff, clock.now(), "anna")
        assert assignment.owner == "katya"
        assert assignment.reason == "rule default: previous owner anna works in another branch; round-robin"

    def test_nobody_free_goes_to_the_branchs_own_manager(self, aws):
        clock.freeze(SATURDAY_11)
        aws.store.staff.set_off_until("katya", SATURDAY_11 + timedelta(days=1))
        facts = LeadFacts(branch="khimki")
        assignment = choose_owner(lead(service="manicure"), facts, CFG, aws.store.staff, clock.now(), None)
        assert assignment.owner == "vera"

    def test_off_hours_and_sla_follow_the_branchs_hours(self, aws):
        evening = moment(KRS, "2026-03-14 19:00")  # Khimki closed at 18:00, the centre is open
        clock.freeze(evening)
        khimki = choose_owner(
            lead(service="manicure"), LeadFacts(branch="khimki"), CFG, aws.store.staff, evening, None
        )
        center = choose_owner(
            lead(service="manicure"), LeadFacts(branch="center"), CFG, aws.store.staff, evening, None
        )
        assert (khimki.owner, khimki.callback_at) == ("katya", moment(KRS, "2026-03-15 10:00"))
        assert (center.owner, center.callback_at) == ("anna", None)
        warm = lead(branch="khimki", temperature="warm")  # 60 business minutes
        assert sla_due(CFG, warm, moment(KRS, "2026-03-14 17:30")) == moment(KRS, "2026-03-15 10:30")
