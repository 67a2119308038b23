"""Editing the stored config in place: comments, order and untouched sections stay as written."""

from __future__ import annotations

import yaml

from leadflow.config_yaml import edit_config, set_staff_active

TEXT = """\
# Салон «Лайм»
timezone: Europe/Moscow   # Москва
services:
  - {id: manicure, name: Маникюр, keywords: [маникюр,
                                             ногти]}
staff:
  # Анна — до мая
  - {id: anna, name: Анна, capacity: 15}
  - id: olga
    name: Ольга   # старший мастер
    capacity: 10
sla: {hot_min: 15}
"""


def test_one_member_made_inactive_changes_one_line_and_keeps_every_comment():
    edited = set_staff_active(TEXT, "olga", False)
    assert yaml.safe_load(edited)["staff"][1]["active"] is False
    old, new = TEXT.splitlines(), edited.splitlines()
    assert [line for line in new if line not in old] == ["    active: false"]
    assert all(line in new for line in old)  # the wrapped services line and every comment included


def test_an_edit_of_one_section_leaves_the_others_byte_for_byte():
    edited = edit_config(TEXT, lambda data: data["sla"].__setitem__("hot_min", 10))
    assert edited == TEXT.replace("sla: {hot_min: 15}", "sla: {hot_min: 10}")


def test_a_file_ruamel_refuses_but_the_config_reader_takes_is_still_edited():
    twice = TEXT + "sla: {hot_min: 20}\n"  # a key twice: the last one counts (as the functions read it)
    edited = set_staff_active(twice, "anna", False)
    data = yaml.safe_load(edited)
    assert data["staff"][0]["active"] is False and data["sla"] == {"hot_min": 20}
