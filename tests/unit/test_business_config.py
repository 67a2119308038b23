"""The business config: the minimal file is valid, and every error names its YAML line."""

from __future__ import annotations

import textwrap

import pytest

from leadflow.business import ConfigError, parse_business_config

BASE = """\
timezone: Asia/Krasnoyarsk
services:
  - {id: manicure, name: Маникюр, group: nails}
branches:
  - id: center
"""


def errors_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_business_config(textwrap.dedent(text), source="biz.yaml")
    return str(caught.value)


def test_only_timezone_and_services_is_valid():
    cfg = parse_business_config("timezone: Europe/Moscow\nservices: [{id: cut, name: Стрижка}]\n")
    assert cfg.staff == [] and cfg.routing == [] and cfg.hours["mon"][0].start == "10:00"


def test_bad_timezone_names_line_1():
    message = errors_of(BASE.replace("Krasnoyarsk", "Krasnoyarskk"))
    assert message.startswith("biz.yaml: timezone (line 1): unknown time zone 'Asia/Krasnoyarskk'")


def test_bad_branch_timezone_names_its_line():
    text = BASE + "    timezone: Europe/Moskva\n"
    assert "branches #1.timezone (line 6): unknown time zone 'Europe/Moskva'" in errors_of(text)


@pytest.mark.parametrize("bad", ["25:00", "24:30", "9:5", "10-00", "ten"])
def test_bad_hh_mm_names_its_line(bad):
    text = BASE + f'    hours:\n      mon: ["09:00-18:00"]\n      tue: ["09:00-{bad}"]\n'
    message = errors_of(text)
    assert "(line 8)" in message and "expected a time as HH:MM" in message, message


def test_24_00_closes_the_day():
    cfg = parse_business_config(BASE + '    hours: {fri: ["18:00-24:00"]}\n')
    assert cfg.branches[0].hours is not None and cfg.branches[0].hours["fri"][0].end == "24:00"


def test_unknown_skill_names_its_line():
    text = (
        BASE
        + "staff:\n  - {id: anna, name: Анна}\n  - id: katya\n    name: Катя\n    skills: [nails, hiar]\n"
    )
    assert errors_of(text) == "biz.yaml: staff #2.skills #2 (line 10): staff katya: unknown skill 'hiar'"


def test_unknown_assign_to_names_its_line():
    text = BASE + (
        "staff: [{id: anna, name: Анна}]\n"
        "routing:\n"
        "  - name: vip\n"
        "    match: {vip: true}\n"
        "    assign_to:\n"
        "      - manager\n"
        "      - boss\n"
    )
    assert (
        errors_of(text)
        == "biz.yaml: routing #1.assign_to #2 (line 12): routing rule 'vip': unknown assign_to 'boss'"
    )


def test_every_reference_error_is_reported_with_its_own_line():
    text = BASE + (
        "staff:\n"
        "  - {id: anna, name: Анна, branch: north}\n"  # line 7
        "  - {id: anna, name: Анна 2}\n"  # line 8
        "routing:\n"
        "  - {name: r, match: {service: nail}}\n"  # line 10
    )
    lines = errors_of(text).splitlines()
    assert lines == [
        "biz.yaml: staff #2.id (line 8): duplicate id 'anna'",
        "biz.yaml: staff #1.branch (line 7): staff anna: unknown branch 'north'",
        "biz.yaml: routing #1.match.service #1 (line 10): routing rule 'r': match on unknown service 'nail' (did you mean 'nails'?)",
    ]


def test_negative_capacity_names_its_line():
    assert "staff #1.capacity (line 7)" in errors_of(BASE + "staff:\n  - {id: a, name: A, capacity: -1}\n")


def test_owner_is_a_staff_role_and_a_routing_target():
    cfg = parse_business_config(
        BASE + "staff: [{id: lena, name: Лена, role: owner}]\n"
        "routing: [{name: vip, match: {vip: true}, assign_to: [owner]}]\n"
    )
    assert cfg.staff[0].role == "owner" and cfg.routing[0].assign_to == ["owner"]


def test_unknown_role_names_its_line():
    message = errors_of(BASE + "staff: [{id: lena, name: Лена, role: boss}]\n")
    assert message.startswith("biz.yaml: staff #1.role (line 6): Input should be"), message


def test_bundled_example_business_is_valid():
    from leadflow.business import load_business_config
    from leadflow_local.stack import EXAMPLE_CONFIG

    example = load_business_config(EXAMPLE_CONFIG)
    assert len(example.staff) == 10 and len(example.branches) == 2


@pytest.mark.parametrize("written", ["'9pm'", "25:00", "'21.00'"])
def test_a_time_of_day_that_is_not_hh_mm_is_refused_at_check_time(written):
    # Issue 15, bug 1: '9pm' passed `config check`, then every remind run failed.
    text = f"timezone: Asia/Krasnoyarsk\nservices: [{{id: a, name: A}}]\nreminders:\n  digest_at: {written}\n"
    with pytest.raises(ConfigError) as error:
        parse_business_config(text, source="salon.yaml")
    assert str(error.value).startswith("salon.yaml: reminders.digest_at (line 4): expected a time as HH:MM")


def test_an_unquoted_time_is_the_time_it_was_meant_to_be():
    # YAML reads an unquoted 21:00 as the number 1260 (base 60).
    text = "timezone: Asia/Krasnoyarsk\nservices: [{id: a, name: A}]\nreminders:\n  digest_at: 21:00\n  quiet_hours: {start: 22:00, end: 8:00}\n"
    config = parse_business_config(text)
    assert config.reminders.digest_at == "21:00"
    assert (config.reminders.quiet_hours.start, config.reminders.quiet_hours.end) == ("22:00", "08:00")


# --------------------------------------------------------------------------- knowledge (the conversation issue)


def test_a_config_without_knowledge_keeps_loading_with_its_defaults():
    cfg = parse_business_config(BASE)
    assert cfg.knowledge.qa == [] and cfg.knowledge.fact("parking") is None
    assert cfg.branches[0].address is None and cfg.branches[0].directions is None
    assert cfg.sla.question_min == 60
    assert cfg.messages.question_ack == "Уточню у администратора и вернусь с ответом."
    assert cfg.messages.in_language("en").greeting == "Hello{name_part}!"


def test_the_knowledge_section_with_branch_addresses_and_the_owners_answers():
    cfg = parse_business_config(
        BASE
        + textwrap.dedent("""\
            address: ул. Ленина, 5
            directions: Вход со двора, второй этаж.
            parking: Парковка у входа.
        knowledge:
          payment: Принимаем наличные, карты и СБП.
          what_to_bring: Ничего не нужно, всё есть у нас.
          cancellation: Отменить или перенести запись можно за 3 часа.
          qa:
            - questions: [есть подарочные сертификаты, сертификат]
              answer: Да, на любую сумму.
              answer_en: Yes, for any amount.
          en:
            payment: Cash, cards and SBP.
        sla: {question_min: 30}
        messages:
          en: {greeting: "Hi{name_part}!"}
        """)
    )
    branch = cfg.branches[0]
    assert (branch.address, branch.directions, branch.parking) == (
        "ул. Ленина, 5",
        "Вход со двора, второй этаж.",
        "Парковка у входа.",
    )
    assert cfg.knowledge.fact("payment", "en") == "Cash, cards and SBP."
    assert (
        cfg.knowledge.fact("cancellation", "en") == "Отменить или перенести запись можно за 3 часа."
    )  # no English: as written
    assert cfg.knowledge.qa[0].questions == ["есть подарочные сертификаты", "сертификат"]
    assert cfg.sla.question_min == 30
    assert (
        cfg.messages.en.greeting == "Hi{name_part}!"
        and cfg.messages.en.ask_time == "What day and time suit you?"
    )


def test_an_owners_answer_needs_a_question():
    message = errors_of(BASE + "knowledge:\n  qa:\n    - {questions: [], answer: Да}\n")
    assert "knowledge.qa #1.questions (line 8)" in message, message


def test_a_reply_text_with_an_unknown_slot_is_refused_at_check_time():
    # It passed `config check`, then every greeting failed with KeyError: 'name'.
    base = "timezone: Asia/Krasnoyarsk\nservices: [{id: a, name: A}]\nmessages:\n"
    assert errors_of(base + '  greeting: "Привет, {name}!"\n') == (
        "biz.yaml: messages (line 4): greeting: unknown slot {name}; this text can use {name_part}"
    )
    assert "this text can use {service}, {when}" in errors_of(
        base + '  en:\n    reminder: "See you {servce}"\n'
    )
    assert "braces do not pair" in errors_of(base + '  not_target: "Спасибо {"\n')
    parse_business_config(base + '  greeting: "Привет{name_part}! {{акция}}"\n')  # a brace itself, doubled


def test_a_misspelt_rule_value_is_refused_instead_of_never_firing():
    text = ("timezone: Asia/Krasnoyarsk\nservices: [{id: a, name: A}]\nrouting:\n"
            "  - {name: q, match: {intent: questions, channel: telgram, temperature: hot}}\n")  # fmt: skip
    assert errors_of(text).splitlines() == [
        "biz.yaml: routing #1.match.channel (line 4): unknown channel 'telgram' (did you mean 'telegram'?); "
        "one of: telegram, whatsapp, instagram, vk, form, call, sms",
        "biz.yaml: routing #1.match.intent (line 4): unknown intent 'questions' (did you mean 'question'?); "
        "one of: booking, question, not_target",
    ]
