"""A version's «что изменилось»: a few Russian lines a salon owner can read in the versions list."""

from __future__ import annotations

from leadflow.domain.config_diff import MAX_LINES, describe_changes


def test_rows_are_named_by_their_id_and_each_change_says_before_and_after():
    before = {
        "timezone": "Europe/Moscow",
        "staff": [{"id": "anna", "capacity": 15}, {"id": "olga", "capacity": 15}],
        "routing": [{"name": "vip", "match": {"vip": True}}, {"name": "q", "match": {"intent": "question"}}],
        "sla": {"hot_min": 15},
    }
    after = {
        "timezone": "Asia/Krasnoyarsk",
        "staff": [
            {"id": "anna", "capacity": 10, "active": False},
            {"id": "olga", "capacity": 15},
            {"id": "dasha"},
        ],
        "routing": [{"name": "q", "match": {"intent": ["question", "booking"]}}],
        "messages": {"greeting": "Добрый день! Рады видеть вас в нашем салоне красоты «Лайм»!"},
    }
    assert describe_changes(before, after) == [
        "timezone: Europe/Moscow → Asia/Krasnoyarsk",
        "Сотрудники: добавлен «dasha»",
        "Сотрудники: «anna» capacity: 15 → 10",
        "Сотрудники: «anna» active: — → нет",
        "Правила: удалён «vip»",
        "Правила: «q» match.intent: question → [question, booking]",
        "Тексты: добавлен раздел",
        "SLA: раздел удалён",
    ]


def test_a_long_list_of_changes_ends_with_how_many_more():
    before = {"sla": {f"k{i}": i for i in range(20)}}
    after = {"sla": {f"k{i}": i + 1 for i in range(20)}}
    lines = describe_changes(before, after)
    assert len(lines) == MAX_LINES and lines[-1] == f"… и ещё {20 - MAX_LINES + 1}"


def test_a_reordered_list_says_so():
    rules = [{"name": "a"}, {"name": "b"}]
    assert describe_changes({"routing": rules}, {"routing": rules[::-1]}) == ["Правила: изменён порядок"]
