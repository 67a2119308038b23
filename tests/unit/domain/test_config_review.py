"""`leadflow config check` warns (and still accepts) a config that will not do what its author meant,
names the line, and suggests the name that was meant."""

from __future__ import annotations

import textwrap

import pytest

from leadflow.business import ConfigError, dotted, locate, parse_business_config
from leadflow.domain.config_review import config_warnings
from leadflow_local.cli import main

BASE = """\
timezone: Asia/Krasnoyarsk
services:
  - {id: manicure, name: Маникюр, group: nails}
  - {id: hair_coloring, name: Окрашивание, group: hair}
branches:
  - {id: center, name: Центр, hours: {mon: ["10:00-20:00"], tue: ["10:00-20:00"]}}
  - {id: khimki, name: Химки}
staff:
  - {id: anna, name: Анна, skills: [nails, hair], branch: center}
  - {id: vera, name: Вера, role: manager, branch: center}
  - {id: zoya, name: Зоя, role: manager, branch: khimki}
"""


def warnings(yaml_text: str) -> list[tuple[str, str, int | None]]:
    text = textwrap.dedent(yaml_text)
    cfg = parse_business_config(text)
    return [(dotted(loc), message, locate(text, loc)) for loc, message in config_warnings(cfg)]


def test_a_clean_config_has_no_warnings():
    assert warnings(BASE) == []


def test_a_staff_member_without_a_branch_works_in_every_branch():
    found = warnings(BASE + "  - {id: lena, name: Лена, skills: [nails]}\n")
    assert found == [("staff #4", "staff lena has no branch: they work in every branch", 12)]


def test_a_branch_with_no_manager_or_senior():
    found = warnings(BASE.replace("  - {id: zoya, name: Зоя, role: manager, branch: khimki}\n", ""))
    assert found == [
        ("branches #2", "branch khimki has no manager or senior: nobody is told when its leads wait", 7)
    ]


def test_a_service_nobody_can_do():
    found = warnings(BASE.replace("skills: [nails, hair]", "skills: [nails]"))
    assert found == [("services #2", "service hair_coloring: no active specialist has it in their skills", 4)]


def test_a_rule_that_can_never_fire():
    rules = """\
routing:
  - {name: instagram, match: {channel: [instagram]}, assign_to: [anna]}
  - {name: instagram ads, match: {channel: [instagram], utm_source: [ig_ads]}, assign_to: [vera]}
"""
    found = warnings(BASE + rules)
    assert found == [
        (
            "routing #2",
            "routing rule 'instagram ads' never fires: rule 'instagram' above it takes all its leads",
            14,
        )
    ]


def test_a_shift_outside_the_branch_hours():
    found = warnings(BASE.replace("branch: center}", 'branch: center, shifts: {mon: ["09:00-15:00"]}}', 1))
    assert found == [
        (
            "staff #1.shifts.mon",
            "staff anna: the mon shift 09:00-15:00 is outside the opening hours of branch center",
            9,
        )
    ]


@pytest.mark.parametrize(
    ("mistake", "hint"),
    [
        ("skills: [nails, hair_colorin]", "unknown skill 'hair_colorin' (did you mean 'hair_coloring'?)"),
        ("branch: centr}", "unknown branch 'centr' (did you mean 'center'?)"),
    ],
)
def test_an_unknown_name_gets_the_nearest_known_one(mistake, hint):
    text = (
        BASE.replace("skills: [nails, hair]", mistake)
        if "skills" in mistake
        else BASE.replace("branch: center}", mistake, 1)
    )
    with pytest.raises(ConfigError) as error:
        parse_business_config(text, source="salon.yaml")
    (line,) = str(error.value).splitlines()
    assert line.startswith("salon.yaml: staff #1.") and "(line 9)" in line and line.endswith(hint)


def test_a_yaml_syntax_error_names_the_file_and_the_line(tmp_path, capsys):
    path = tmp_path / "salon.yaml"
    path.write_text(BASE + "  - {id: lena, name: Лена\n", encoding="utf-8")
    assert main(["config", "check", str(path)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"{path} (line 13, column 1): not valid YAML")


def test_config_check_prints_one_line_per_warning_and_accepts(tmp_path, capsys):
    path = tmp_path / "salon.yaml"
    path.write_text(BASE + "  - {id: lena, name: Лена, skills: [nails]}\n", encoding="utf-8")
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0] == f"{path}: staff #4 (line 12): warning: staff lena has no branch: they work in every branch"
    )
    assert out[-1].startswith(f"{path}: ok")


def test_fields_nothing_reads_are_warned_about():
    found = warnings(BASE + "sla: {remind_owner_after_min: 10}\nsms: {provider: smsc, sender: Salon}\n")
    assert [(where, text.split(" is not used")[0]) for where, text, _ in found] == [
        ("sla.remind_owner_after_min", "sla.remind_owner_after_min"),
        ("sms.provider", "sms.provider"),
        ("sms.sender", "sms.sender"),
    ]
