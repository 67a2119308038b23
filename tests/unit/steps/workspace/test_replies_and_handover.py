"""Answering the client from a card; the assistant stays quiet until it is given the lead back."""

from __future__ import annotations

from leadflow import clock
from tests.support.workspace import ANNA, CLIENT, KATYA, MARINA, Workspace

BOOKING = "Хочу на маникюр завтра в 15:00, меня зовут Ирина, тел 89138402765"


def _owner_chat(ws: Workspace) -> int:
    return {"anna": ANNA, "katya": KATYA, "marina": MARINA}[ws.only_lead().owner or ""]


def test_a_reply_to_the_card_reaches_the_client_and_hands_the_lead_over(telegram_ws):
    ws = telegram_ws
    ws.say(BOOKING)
    chat, lead = _owner_chat(ws), ws.only_lead()
    card = ws.card_id(lead)
    bot_answers = len(ws.tg.texts(CLIENT))

    ws.reply_to_card(chat, card, "Ирина, добрый день! Записала вас на завтра 15:00 🌸")

    assert ws.tg.texts(CLIENT)[bot_answers:] == ["Ирина, добрый день! Записала вас на завтра 15:00 🌸"]
    lead = ws.lead(lead.lead_id)
    assert lead.handed_over and lead.status == "accepted"
    log = [m for m in ws.aws.store.conversation.history(lead.lead_id) if m.get("direction") == "staff"]
    assert [m["action"] for m in log] == ["reply"]
    card_now = next(m for m in ws.tg.sent[str(chat)] if m["message_id"] == card)
    assert "Вернуть боту" in str(card_now["reply_markup"]) and "ассистент молчит" in card_now["text"]

    # When the client writes again, the assistant is quiet and the owner sees it under the card.
    ws.say("Спасибо! А можно на 16:00?")
    assert len(ws.tg.texts(CLIENT)) == bot_answers + 1
    forwarded = ws.tg.sent[str(chat)][-1]
    assert forwarded["text"] == "💬 Ирина: Спасибо! А можно на 16:00?"
    assert forwarded["reply_to_message"]["message_id"] == card


def test_slash_bot_as_a_reply_to_the_card_gives_the_lead_back_to_the_assistant(telegram_ws):
    ws = telegram_ws
    ws.say(BOOKING)
    chat, lead = _owner_chat(ws), ws.only_lead()
    ws.reply_to_card(chat, ws.card_id(lead), "Здравствуйте, Ирина!")
    assert ws.lead(lead.lead_id).handed_over

    ws.command(chat, "/bot", reply_to=ws.card_id(lead))  # a real command entity, replying to the card

    assert not ws.lead(lead.lead_id).handed_over
    assert ws.tg.texts(chat)[-1] == "Ассистент снова отвечает клиенту."
    answered = len(ws.tg.texts(CLIENT))
    ws.say("А сколько стоит покрытие?")
    assert len(ws.tg.texts(CLIENT)) == answered + 1  # the assistant answers again


def test_the_give_back_button_does_the_same(telegram_ws):
    ws = telegram_ws
    ws.say(BOOKING)
    chat, lead = _owner_chat(ws), ws.only_lead()
    ws.reply_to_card(chat, ws.card_id(lead), "Здравствуйте, Ирина!")

    ws.press(chat, f"bot:{lead.lead_id}", ws.card_id(lead))

    assert not ws.lead(lead.lead_id).handed_over
    card_now = next(m for m in ws.tg.sent[str(chat)] if m["message_id"] == ws.card_id(lead))
    assert "Вернуть боту" not in str(card_now.get("reply_markup"))


def test_a_reply_to_a_call_lead_goes_out_by_sms(outbox_ws):
    ws = outbox_ws
    assert ws.post(ws.hooks.missed_call("+79235550101", "+73912000000", clock.now())) == 200
    ws.run()
    lead = ws.only_lead()
    chat = {"anna": ANNA, "katya": KATYA, "marina": MARINA}.get(lead.owner or "")
    assert chat is not None

    ws.reply_to_card(chat, ws.card_id(lead), "Вы звонили в салон «Лотос», чем помочь?")

    (sms,) = ws.outbox(lead.lead_id, "staff_reply")
    assert (sms["channel"], sms["to"], sms["text"]) == (
        "sms",
        "+79235550101",
        "Вы звонили в салон «Лотос», чем помочь?",
    )


def test_a_client_replying_to_the_bot_is_not_lost(telegram_ws):
    """A client's Telegram «reply» to our answer looks like staff traffic at the webhook; it must
    come back to the client flow and join the lead."""
    ws = telegram_ws
    ws.say(BOOKING)
    lead = ws.only_lead()
    answer = ws.tg.sent[str(CLIENT)][-1]["message_id"]

    ws.reply_to_card(CLIENT, answer, "Да, и ещё хочу дизайн")

    texts = [
        m.get("text") for m in ws.aws.store.conversation.history(lead.lead_id) if m.get("direction") == "in"
    ]
    assert "Да, и ещё хочу дизайн" in texts


def test_a_client_whose_channel_refuses_is_reported_to_the_staff_member(telegram_ws):
    ws = telegram_ws
    ws.say(BOOKING)
    chat, lead = _owner_chat(ws), ws.only_lead()
    ws.tg.fail_next("blocked", method="sendMessage")

    ws.reply_to_card(chat, ws.card_id(lead), "Ирина, здравствуйте!")

    assert ws.tg.texts(chat)[-1].startswith("Не удалось доставить ответ клиенту")
    assert ws.route_failures == []


def test_a_question_the_assistant_could_not_answer_is_on_the_card_until_someone_answers_it(telegram_ws):
    ws = telegram_ws
    ws.say("А с собакой к вам можно? 89138402765")
    lead = ws.only_lead()
    assert ws.tg.texts(CLIENT)[-1].endswith("Уточню у администратора и вернусь с ответом.")
    chat, card = _owner_chat(ws), ws.card_id(lead)
    card_text = next(m for m in ws.tg.sent[str(chat)] if m["message_id"] == card)["text"]
    assert "❓ Ждёт ответа администратора: «А с собакой к вам можно? 89138402765»" in card_text

    ws.reply_to_card(chat, card, "Да, с маленькой собакой можно 🐶")

    assert ws.tg.texts(CLIENT)[-1] == "Да, с маленькой собакой можно 🐶"
    assert ws.lead(lead.lead_id).question is None
    card_now = next(m for m in ws.tg.sent[str(chat)] if m["message_id"] == card)
    assert "❓" not in card_now["text"]
