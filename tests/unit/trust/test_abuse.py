"""Abuse and cost, through the real handlers: a form flooded with numbers sends no SMS abroad and at
most the hourly budget at home (item 15); a chat that floods gets a few answers, and every message
is still kept (item 16)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from leadflow import clock
from tests.support.builders import use_business
from tests.support.workspace import Workspace, start_workspace

FOREIGN = ["+882 1234 5678", "+44 20 7946 0958", "+1 202 555 0143", "+49 30 901820", "+86 10 6552 9988"]


@pytest.fixture
def ws(aws, monkeypatch) -> Workspace:
    return start_workspace(aws, monkeypatch, None)


def sms(ws: Workspace) -> list[dict]:
    items = ws.aws.store.conversation.table.scan()["Items"]  # type: ignore[attr-defined]
    return [i for i in items if i.get("direction") == "out" and i.get("channel") == "sms"]


def form(ws: Workspace, phone: str, n: int) -> None:
    assert (
        ws.post(ws.hooks.tilda_form({"name": f"Гость {n}", "phone": phone, "comment": "маникюр завтра"}))
        == 200
    )


def test_item_15_a_form_flood_with_foreign_numbers_sends_no_sms_abroad(ws):
    rng = random.Random(15)
    for n in range(20):
        form(ws, rng.choice(FOREIGN), n)
    ws.run()
    sent = [m for m in sms(ws) if m["status"] == "sent"]
    assert sent == []
    refused = [m for m in sms(ws) if m["status"] == "refused"]
    assert refused and all(m["error"] == "country not allowed" for m in refused)


def test_item_15_at_home_at_most_the_hourly_budget_and_the_owner_is_told_once(ws, aws, monkeypatch):
    business = aws.store.config.get()
    use_business(
        monkeypatch, business.model_copy(update={"sms": business.sms.model_copy(update={"per_hour": 5})})
    )
    for n in range(12):
        form(ws, f"+7 913 {500 + n:03d}-00-00", n)
        clock.advance(timedelta(seconds=20))
    ws.run()
    sent = [m for m in sms(ws) if m["status"] == "sent"]
    assert len(sent) == 5
    refused = [m for m in sms(ws) if m["status"] == "refused"]
    assert {m["error"] for m in refused} == {"hourly SMS budget spent"} and len(refused) == 7
    notices = [
        i
        for i in aws.store.conversation.table.scan()["Items"]
        if i.get("kind") == "sms_budget" and i["status"] == "sent"
    ]
    assert (
        1 <= len(notices) <= 3 and len({n["id"].split(":")[1] for n in notices}) == 1
    )  # one hour, told once each
    # Every lead is still a lead: stored, owned, with its card
    leads = [aws.store.leads.get(i["lead_id"]) for i in aws.store.leads.table.scan()["Items"]]
    assert len(leads) == 12 and all(lead.owner for lead in leads)


def test_item_15_one_number_gets_a_few_automatic_texts_a_day(ws, aws):
    for n in range(6):
        form(ws, "+7 913 777-00-00", n)
        clock.advance(timedelta(minutes=30))
        ws.run()
    sent = [m for m in sms(ws) if m["status"] == "sent"]
    assert len(sent) == aws.store.config.get().sms.per_phone_per_day == 3


def test_item_16_a_flood_from_one_chat_gets_a_few_answers_and_every_message_is_kept(ws, aws):
    for n in range(30):
        ws.say(f"сообщение номер {n}", user=77001)
    items = aws.store.conversation.table.scan()["Items"]
    replies = [i for i in items if i.get("kind") == "reply" and i.get("status") == "sent"]
    kept = [i for i in items if i.get("direction") == "in"]
    assert len(kept) == 30
    assert len(replies) == aws.store.config.get().replies.per_chat == 5
    # ten minutes later the client is answered again
    clock.advance(timedelta(minutes=11))
    ws.say("ну так что, запишете на маникюр?", user=77001)
    replies = [
        i
        for i in aws.store.conversation.table.scan()["Items"]
        if i.get("kind") == "reply" and i.get("status") == "sent"
    ]
    assert len(replies) == 6
