"""`leadflow qualify`: JSON lines in, one JSON line out per line, bad lines answered with an error."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from leadflow_local.qualify_cmd import run


def run_lines(catalog: Path, lines: list[str], engine: str = "offline") -> tuple[int, list[dict]]:
    out = io.StringIO()
    code = run(str(catalog), engine, io.StringIO("\n".join(lines) + "\n"), out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_good_lines_in_order(catalog_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "id": "a",
                "text": "Здравствуйте! Можно на женскую стрижку завтра после 18? Меня зовут Ирина",
                "received_at": "2026-03-12T14:05:00+07:00",
                "channel": "telegram",
            },
            ensure_ascii=False,
        ),
        json.dumps(
            {
                "id": 2,
                "text": "добрый день скажите адрес",
                "received_at": "2026-03-13T02:30:00Z",
                "channel": "whatsapp",
            },
            ensure_ascii=False,
        ),
    ]
    code, answers = run_lines(catalog_path, lines)
    assert code == 0
    keys = "id intent temperature service services preferred_date preferred_time preferred_window name phone"
    assert [list(a) for a in answers] == [keys.split()] * 2
    assert answers == [
        {
            "id": "a",
            "intent": "booking",
            "temperature": "hot",
            "service": "haircut_women",
            "services": ["haircut_women"],
            "preferred_date": "2026-03-13",
            "preferred_time": "18:00",
            "preferred_window": "after 18:00",
            "name": "Ирина",
            "phone": None,
        },
        {
            "id": 2,
            "intent": "question",
            "temperature": "cold",
            "service": None,
            "services": [],
            "preferred_date": None,
            "preferred_time": None,
            "preferred_window": None,
            "name": None,
            "phone": None,
        },
    ]


def test_bad_lines_get_an_error_and_the_run_goes_on(catalog_path: Path) -> None:
    good = {"id": "ok", "text": "маникюр завтра", "received_at": "2026-03-12T10:00:00+07:00"}
    lines = [
        "{not json",
        json.dumps({"id": "no-text", "received_at": "2026-03-12T10:00:00+07:00"}),
        json.dumps({"id": "bad-time", "text": "маникюр", "received_at": "вчера"}),
        json.dumps({"id": "no-time", "text": "маникюр"}),
        json.dumps(["a", "list"]),
        "",
        json.dumps(good, ensure_ascii=False),
    ]
    code, answers = run_lines(catalog_path, lines)
    assert code == 1
    assert [a["id"] for a in answers] == [None, "no-text", "bad-time", "no-time", None, "ok"]
    assert all(set(a) == {"id", "error"} for a in answers[:5])
    assert "text" in answers[1]["error"] and "received_at" in answers[2]["error"]
    assert answers[5]["preferred_date"] == "2026-03-13" and answers[5]["service"] == "manicure"


def test_error_lines_do_not_echo_the_message_text(catalog_path: Path) -> None:
    line = json.dumps({"id": "x", "text": "89131234567 секрет", "received_at": "nope"}, ensure_ascii=False)
    _, answers = run_lines(catalog_path, [line])
    assert "89131234567" not in answers[0]["error"] and "секрет" not in answers[0]["error"]


def test_naive_received_at_is_read_in_the_catalog_time_zone(catalog_path: Path) -> None:
    line = json.dumps(
        {"id": 1, "text": "маникюр завтра", "received_at": "2026-03-12T23:30:00"}, ensure_ascii=False
    )
    _, answers = run_lines(catalog_path, [line])
    assert answers[0]["preferred_date"] == "2026-03-13"


def test_unknown_engine_and_missing_catalog_stop_before_reading(catalog_path: Path, tmp_path: Path) -> None:
    assert run(str(catalog_path), "gpt", io.StringIO("{}\n"), io.StringIO()) == 2
    assert run(str(tmp_path / "missing.yaml"), "offline", io.StringIO("{}\n"), io.StringIO()) == 2


def test_llm_engine_missing_gives_a_clear_error_per_line(
    catalog_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setitem(sys.modules, "leadflow.adapters.llm", None)  # import of it raises ImportError
    lines = [
        json.dumps({"id": i, "text": "маникюр", "received_at": "2026-03-12T10:00:00+07:00"}) for i in (1, 2)
    ]
    code, answers = run_lines(catalog_path, lines, engine="llm")
    assert code == 1
    assert [a["id"] for a in answers] == [1, 2]
    assert all("engine llm unavailable" in a["error"] for a in answers)


def test_llm_engine_is_called_when_present(catalog_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from leadflow.domain.models import Qualification

    calls: list[tuple[str, str]] = []

    def fake_llm(text, received_at, services, *, tz, channel="", strict=False):
        calls.append((text, channel))
        return Qualification(intent="question", temperature="cold", engine="llm")

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    module = types.ModuleType("leadflow.adapters.llm")
    module.qualify_with_llm = fake_llm  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "leadflow.adapters.llm", module)
    line = json.dumps({"id": 1, "text": "цена?", "received_at": "2026-03-12T10:00:00+07:00", "channel": "vk"})
    code, answers = run_lines(catalog_path, [line], engine="llm")
    assert code == 0 and calls == [("цена?", "vk")]
    assert answers[0]["intent"] == "question"
