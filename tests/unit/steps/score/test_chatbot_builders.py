"""Leads from ManyChat and Chatfuel (they post forms) are answered in the builder's chat by the real
score step, through the builder's sending API — not a paid SMS; a subscriber without a phone is
answered too. SMS only when the builder cannot reach them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from leadflow import clock, wiring
from leadflow.adapters.channels.base import SendError
from leadflow.adapters.channels.chatfuel import ChatfuelSender
from leadflow.adapters.channels.manychat import ManyChatSender
from leadflow.adapters.messenger import Messenger, client_message
from leadflow.domain.models import OutboundMessage
from tests.fakes.chatfuel_server import FakeChatfuel
from tests.fakes.manychat_server import FakeManyChat
from tests.support.workspace import Workspace, start_workspace


@dataclass
class Builders:
    ws: Workspace
    manychat: FakeManyChat
    chatfuel: FakeChatfuel


@pytest.fixture
def builders(aws, monkeypatch) -> Iterator[Builders]:
    with FakeManyChat() as manychat, FakeChatfuel() as chatfuel:
        monkeypatch.setenv("MANYCHAT_API_TOKEN", manychat.token)
        monkeypatch.setenv("MANYCHAT_API_BASE", manychat.url)
        monkeypatch.setenv("CHATFUEL_API_TOKEN", chatfuel.token)
        monkeypatch.setenv("CHATFUEL_API_BASE", chatfuel.url)
        monkeypatch.setenv("CHATFUEL_BOT_ID", chatfuel.bot_id)
        ws = start_workspace(aws, monkeypatch, None)
        yield Builders(ws, manychat, chatfuel)


def _outbound(ws: Workspace) -> list[dict]:
    lead = ws.only_lead()
    return sorted(ws.aws.store.conversation.outbound(lead.lead_id), key=lambda m: m["claimed_at"])


def test_a_manychat_subscriber_without_a_phone_is_answered_in_instagram_not_by_sms(builders):
    ws, manychat = builders.ws, builders.manychat
    manychat.subscriber(77001, "instagram")

    assert (
        ws.post(
            ws.hooks.manychat_form("77001", "Мария", "Хочу на маникюр завтра в 15:00", messenger="instagram")
        )
        == 200
    )
    ws.run()

    (sent,) = manychat.sent
    assert sent.subscriber_id == 77001 and sent.channel == "instagram"
    assert "маникюр" in " ".join(sent.texts).lower()
    assert "message_tag" not in sent.body
    replies = [m for m in _outbound(ws) if m["kind"] == "reply"]
    assert [(m["channel"], m["to"], m["status"]) for m in replies] == [
        ("manychat", "instagram:77001", "sent")
    ]
    lead = ws.only_lead()
    assert lead.contact.phone is None and lead.first_reply_at is not None
    card = next(m for m in _outbound(ws) if m["kind"] == "lead_card")
    assert "Канал: ManyChat (Instagram)" in card["text"]


def test_a_chatfuel_user_is_answered_through_a_broadcast_of_the_reply_block(builders):
    ws, chatfuel = builders.ws, builders.chatfuel
    chatfuel.users.add("2345678901234567")

    assert ws.post(ws.hooks.chatfuel_form("2345678901234567", "Ирина", "Нужна чистка лица, есть окна в пятницу?",
                                          phone="+7 903 765-43-21")) == 200  # fmt: skip
    ws.run()

    (sent,) = chatfuel.sent
    assert (sent.user_id, sent.block) == ("2345678901234567", "leadflow_reply")
    assert "чистк" in sent.attributes["leadflow_reply"].lower()
    assert sent.in_query == [], "the token travels in the body, never in a URL"
    assert {m["channel"] for m in _outbound(ws) if m["kind"] == "reply"} == {
        "chatfuel"
    }  # no SMS though a phone


def test_sms_only_when_the_builder_cannot_reach_the_client(builders):
    ws, manychat = builders.ws, builders.manychat
    manychat.subscriber(1234567890123456)
    manychat.close_window(1234567890123456)

    assert ws.post(ws.hooks.manychat_form("1234567890123456", "Мария", "Маникюр завтра в 15:00",
                                          phone="+79031234567")) == 200  # fmt: skip
    ws.run()

    replies = [m for m in _outbound(ws) if m["kind"] == "reply"]
    assert [(m["channel"], m["status"]) for m in replies] == [("manychat", "failed"), ("sms", "sent")]
    assert "over 24h" in replies[0]["error"]
    assert replies[1]["to"] == "+79031234567" and replies[1]["id"].endswith(":sms")
    assert manychat.sent == []


def test_without_a_phone_and_without_the_builder_the_owner_still_has_the_lead(builders):
    ws = builders.ws  # subscriber unknown to ManyChat, no phone: nothing reaches them, nothing crashes
    assert ws.post(ws.hooks.manychat_form("424242", "Вика", "Хочу на маникюр завтра в 15:00")) == 200
    ws.run()
    replies = [m for m in _outbound(ws) if m["kind"] == "reply"]
    assert [(m["channel"], m["status"]) for m in replies] == [("manychat", "failed")]
    assert ws.only_lead().owner


def test_staff_answer_and_a_reminder_go_through_the_builder_too(builders):
    ws, manychat = builders.ws, builders.manychat
    manychat.subscriber(77002, "whatsapp")
    assert (
        ws.post(ws.hooks.manychat_form("77002", "Оля", "Маникюр завтра в 15:00", messenger="whatsapp")) == 200
    )
    ws.run()
    lead = ws.only_lead()
    messenger = wiring.messenger(wiring.business())

    assert messenger.to_client(lead, "staff_reply:1", "staff_reply", "Оля, ждём вас!").outcome == "sent"
    clock.advance(timedelta(hours=20))
    reminder = client_message(lead, "reminder:1", "reminder", "Напоминаем: завтра в 15:00")
    assert messenger.reach_client(lead, reminder, consent=False) == "sent"
    assert [s.texts for s in manychat.sent][-2:] == [["Оля, ждём вас!"], ["Напоминаем: завтра в 15:00"]]
    assert {s.channel for s in manychat.sent} == {"whatsapp"}


def test_a_reminder_the_builder_cannot_deliver_goes_by_sms_when_sms_is_set_up(builders):
    ws, manychat = builders.ws, builders.manychat
    manychat.subscriber(77003)
    assert (
        ws.post(ws.hooks.manychat_form("77003", "Нина", "Маникюр завтра в 15:00", phone="+79031234500"))
        == 200
    )
    ws.run()
    lead = ws.only_lead()
    manychat.close_window(77003)
    messenger = Messenger(ws.aws.store, wiring.business(), wiring.sender, sms_configured=True)
    reminder = client_message(lead, "reminder:2", "reminder", "Напоминаем: завтра в 15:00")
    assert messenger.reach_client(lead, reminder, consent=False) == "sms"
    without_sms = Messenger(ws.aws.store, wiring.business(), wiring.sender, sms_configured=False)
    again = client_message(lead, "reminder:3", "reminder", "Напоминаем: завтра в 15:00")
    assert without_sms.reach_client(lead, again, consent=False) == "failed"


# --------------------------------------------------------------------------- the senders on the wire


def _message(to: str, text: str) -> OutboundMessage:
    return OutboundMessage(id="reply:1", channel="manychat", to=to, lead_id="L1", kind="reply", text=text)


def test_manychat_splits_a_long_instagram_text_by_bytes_and_maps_errors():
    with FakeManyChat() as fake:
        fake.subscriber(5, "instagram")
        sender = ManyChatSender(fake.token, base_url=fake.url)
        result = sender.send(_message("instagram:5", "Здравствуйте! " * 120))
        (sent,) = fake.sent
        assert len(sent.texts) == result.segments and all(len(t.encode()) <= 1000 for t in sent.texts)
        fake.fail_next(429, "Too Many Requests")
        with pytest.raises(SendError) as limited:
            sender.send(_message("instagram:5", "Привет"))
        assert limited.value.retryable
        with pytest.raises(SendError) as refused:
            ManyChatSender("wrong", base_url=fake.url).send(_message("instagram:5", "Привет"))
        assert not refused.value.retryable and "401" in refused.value.reason


def test_chatfuel_refusals_are_permanent_and_a_rate_limit_is_not():
    with FakeChatfuel() as fake:
        fake.users.add("u1")
        sender = ChatfuelSender(fake.token, fake.bot_id, base_url=fake.url)
        message = _message("u1", "Привет").model_copy(update={"channel": "chatfuel"})
        assert sender.send(message).segments == 1
        with pytest.raises(SendError) as unknown:
            sender.send(message.model_copy(update={"to": "nobody"}))
        assert not unknown.value.retryable and "User not found" in unknown.value.reason
        fake.fail_next(429, "Rate limit exceeded")
        with pytest.raises(SendError) as limited:
            sender.send(message)
        assert limited.value.retryable
        with pytest.raises(SendError, match="Block"):
            ChatfuelSender(fake.token, fake.bot_id, base_url=fake.url, block="missing").send(message)
