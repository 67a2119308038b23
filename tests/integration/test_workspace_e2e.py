"""The staff workspace end to end on the real local stack (moto server, gateway, pollers), in
outbox mode: a WhatsApp lead → card to the owner → «Беру» → the owner answers from the card →
the client's WhatsApp gets it → the assistant stays quiet and the owner sees the client's next words."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from leadflow import clock, wiring
from leadflow_local.inspect import all_leads, invite, outbox
from leadflow_local.stack import LocalStack, _free_port
from leadflow_local.webhooks import Webhooks

pytestmark = pytest.mark.integration
STAFF_CHATS = {"anna": 5001, "katya": 5002}
CLIENT_PHONE = "+79235551122"


@pytest.fixture(params=["aws", "yandex"])
def stack(tmp_path, request) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    opening = datetime(2026, 3, 14, 11, 0, tzinfo=ZoneInfo("Asia/Krasnoyarsk"))  # Saturday, open
    local = LocalStack(
        port=_free_port(), state_dir=tmp_path, schedule=False, clock_start=opening, flavor=request.param
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()
        os.environ.clear()
        os.environ.update(saved)
        wiring.reset()


def _messages(kind: str, lead_id: str) -> list[dict]:
    return [m for m in outbox() if m["kind"] == kind and m["lead_id"] == lead_id]


def test_owner_takes_a_whatsapp_lead_and_answers_it_from_telegram(stack):
    hooks = Webhooks(stack.url, stack.state()["secrets"])

    def deliver(delivery) -> None:
        assert hooks.post(delivery).status_code == 200
        assert stack.drain(timeout_s=10)

    # Given: the nail masters connected their Telegram chats with one-time invites.
    for staff_id, chat in STAFF_CHATS.items():
        code, _ = invite(staff_id, None)
        deliver(hooks.telegram_command(chat, f"/start inv-{code}", clock.now()))

    # When: a client writes on WhatsApp.
    deliver(
        hooks.whatsapp_text(
            CLIENT_PHONE, "Ольга", "Здравствуйте! Хочу на маникюр завтра в 15:00", clock.now()
        )
    )
    (lead,) = all_leads()
    assert lead.owner in STAFF_CHATS and lead.card
    chat = STAFF_CHATS[lead.owner]
    card_id = int(lead.card.rpartition(":")[2])
    (card,) = _messages("lead_card", lead.lead_id)
    assert card["to"] == str(chat) and "+79235551122" in card["text"] and "Канал: WhatsApp" in card["text"]
    assistant_replies = len(_messages("reply", lead.lead_id))
    assert assistant_replies == 1

    # …the owner presses «Беру»…
    deliver(hooks.telegram_callback(chat, f"accept:{lead.lead_id}", card_id, clock.now()))
    (update,) = _messages("card_update", lead.lead_id)
    assert "✅ Взят:" in update["text"] and update["to"] == str(chat)
    assert len(_messages("callback_answer", lead.lead_id)) == 1

    # …and answers the client by replying to the card.
    answer = "Ольга, добрый день! Завтра в 15:00 свободно, записываю?"
    deliver(hooks.telegram_reply_to_card(chat, card_id, answer, clock.now(), card_text=f"Лид {lead.lead_id}"))
    (sent,) = _messages("staff_reply", lead.lead_id)
    assert (sent["channel"], sent["to"], sent["text"]) == ("whatsapp", lead.chat_id, answer)
    assert lead.chat_id == CLIENT_PHONE.lstrip("+")

    # Then: the client's next WhatsApp message is not answered by the assistant; the owner gets it.
    deliver(hooks.whatsapp_text(CLIENT_PHONE, "Ольга", "Да, записывайте, спасибо!", clock.now()))
    assert len(_messages("reply", lead.lead_id)) == assistant_replies
    (forwarded,) = _messages("client_message", lead.lead_id)
    assert forwarded["to"] == str(chat) and forwarded["text"] == "💬 Ольга: Да, записывайте, спасибо!"
    stored = wiring.store().conversation.outbound(lead.lead_id)
    assert next(m for m in stored if m["kind"] == "client_message")["reply_to_message_id"] == str(card_id)
    (after,) = all_leads()
    assert after.handed_over and after.status == "accepted"
