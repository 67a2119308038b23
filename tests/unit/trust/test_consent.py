"""Item 23 (152-FZ consent): with ``privacy_policy_url`` set, the first answer to a new client and
every form confirmation carry one short line with it — and the line survives an SMS's length."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadflow import clock
from tests.support.builders import use_business
from tests.support.workspace import Workspace, start_workspace

URL = "https://salon-laim.ru/privacy"


@pytest.fixture
def ws(aws, monkeypatch) -> Workspace:
    ws = start_workspace(aws, monkeypatch, None)
    use_business(monkeypatch, aws.store.config.get().model_copy(update={"privacy_policy_url": URL}))
    return ws


def replies(ws: Workspace) -> list[dict]:
    items = ws.aws.store.conversation.table.scan()["Items"]  # type: ignore[attr-defined]
    return sorted((i for i in items if i.get("kind") == "reply"), key=lambda i: i["claimed_at"])


def test_item_23_the_first_answer_links_the_policy_the_next_does_not(ws):
    ws.say("Здравствуйте, хочу на маникюр", user=81001)
    ws.say("завтра в 12", user=81001)
    first, second = replies(ws)
    assert first["text"].endswith(f"Обработка данных: {URL}")
    assert URL not in second["text"]


def test_item_23_every_form_confirmation_links_it_within_one_sms_budget(ws):
    long_comment = "маникюр завтра в 12, " + "очень хочу попасть именно к вам " * 20
    for _ in range(2):
        fields = {"name": "Анна", "phone": "+7 913 555-12-34", "comment": long_comment}
        assert ws.post(ws.hooks.tilda_form(fields)) == 200
        ws.run()
        clock.advance(timedelta(minutes=5))
    sms = [r for r in replies(ws) if r["channel"] == "sms"]
    assert len(sms) == 2
    for reply in sms:
        assert reply["text"].endswith(f"Обработка данных: {URL}") and len(reply["text"]) <= 335
