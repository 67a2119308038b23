"""What a client says after their lead was routed reaches the owner: a hot lead goes out before
the client has given a phone; the phone (name, time, service) that follows edits the card in
place and reaches the CRM record — once, however often the queue delivers it."""

from __future__ import annotations

import pytest

from leadflow import failpoints
from leadflow.domain.cards import card_details_key
from leadflow.domain.models import LeadReady
from tests.support.workspace import ANNA, KATYA, MARINA, Workspace

HOT = "Срочно! Сломался ноготь, нужен маникюр сегодня"
DETAILS = "Ирина, 89138402765, давайте в 17:00"


def _card_chat(ws: Workspace) -> tuple[str, int]:
    lead = ws.only_lead()
    return lead.lead_id, {"anna": ANNA, "katya": KATYA, "marina": MARINA}[lead.owner or ""]


def _card(ws: Workspace, chat: int) -> dict:
    assert ws.tg is not None
    return next(m for m in ws.tg.sent[str(chat)] if m["message_id"] == ws.card_id(ws.only_lead()))


def _edits(ws: Workspace) -> int:
    assert ws.tg is not None
    return sum(1 for r in ws.tg.requests if r.path.endswith("/editMessageText"))


def test_a_phone_given_after_routing_edits_the_card_and_reaches_the_crm(telegram_ws):
    ws = telegram_ws
    ws.say(HOT)
    lead_id, chat = _card_chat(ws)
    lead = ws.lead(lead_id)
    assert lead.owner and not lead.contact.phone  # routed hot, before the phone
    assert ws.crm.details == []

    ws.say(DETAILS)

    lead = ws.lead(lead_id)
    assert lead.contact.phone == "+79138402765"
    assert _edits(ws) == 1
    card = _card(ws, chat)
    assert "Телефон: +79138402765" in card["text"] and "17:00" in card["text"]
    assert ws.crm.details == [(lead_id, "+79138402765")]


def test_words_that_change_nothing_on_the_card_edit_nothing(telegram_ws):
    ws = telegram_ws
    ws.say(HOT)

    ws.say("Спасибо!")

    assert _edits(ws) == 0
    assert ws.crm.details == []


def test_a_second_delivery_of_the_update_edits_nothing_more(telegram_ws):
    ws = telegram_ws
    ws.say(HOT)
    ws.say(DETAILS)
    lead_id, _ = _card_chat(ws)
    body = LeadReady(lead_id=lead_id, reason="updated").model_dump_json()

    ws.route(
        [
            {
                "MessageId": "again",
                "ReceiptHandle": "rh",
                "Body": body,
                "Attributes": {"ApproximateReceiveCount": "2"},
            }
        ]
    )

    assert _edits(ws) == 1
    assert len(ws.crm.details) == 1


class Killed(BaseException):
    """The Lambda runtime killing the invocation at a failpoint (nothing after it runs)."""


def test_a_crash_after_the_card_edit_edits_it_once_on_the_retry(telegram_ws, monkeypatch):
    ws = telegram_ws
    ws.say(HOT)
    lead_id, chat = _card_chat(ws)

    def dies(point: str) -> None:
        if point == "route.after_details_shown":
            monkeypatch.setattr(failpoints, "hit", lambda point: None)
            raise Killed(point)

    monkeypatch.setattr(failpoints, "hit", dies)
    with pytest.raises(Killed):  # route dies after the edit, before the lead notes what it shows
        ws.say(DETAILS)
    assert _edits(ws) == 1 and ws.lead(lead_id).card_shows != card_details_key(ws.lead(lead_id))

    # the queue brings the message back
    body = LeadReady(lead_id=lead_id, reason="updated").model_dump_json()
    ws.route(
        [
            {
                "MessageId": "back",
                "ReceiptHandle": "rh",
                "Body": body,
                "Attributes": {"ApproximateReceiveCount": "2"},
            }
        ]
    )

    assert _edits(ws) == 1  # the edit was claimed: not made twice
    assert "Телефон: +79138402765" in _card(ws, chat)["text"]
    lead = ws.lead(lead_id)
    assert lead.card_shows == card_details_key(lead)
