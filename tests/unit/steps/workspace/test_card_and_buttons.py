"""Lead cards and their buttons against the Bot API (FakeTelegram on loopback)."""

from __future__ import annotations

from datetime import timedelta

from leadflow import clock
from leadflow.steps.workspace import SNOOZE_MIN
from tests.support.workspace import ANNA, KATYA, MARINA, Workspace

NAMES = {"anna": "Анна", "katya": "Катя", "marina": "Марина"}
BOOKING = "Здравствуйте! Хочу на маникюр завтра в 15:00, меня зовут Ирина, тел 89138402765"


def _card(ws: Workspace):
    lead = ws.only_lead()
    chat = {"anna": ANNA, "katya": KATYA, "marina": MARINA}[lead.owner or ""]
    assert ws.tg is not None
    card = next(m for m in ws.tg.sent[str(chat)] if m["message_id"] == ws.card_id(lead))
    return lead, chat, card


def _button_texts(message: dict) -> list[str]:
    return [b["text"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


def _button_data(message: dict) -> list[str]:
    return [
        b["callback_data"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row
    ]


def _calls(ws: Workspace, method: str) -> int:
    assert ws.tg is not None
    return sum(1 for r in ws.tg.requests if r.path.endswith(f"/{method}"))


def test_the_owner_gets_a_card_with_everything_to_call_and_book(telegram_ws):
    ws = telegram_ws
    ws.say(BOOKING)

    lead, _, card = _card(ws)
    assert lead.owner in ("anna", "katya")
    text = card["text"]
    # Tap to call: the international +7 form, which Telegram links, not the client's «8913…».
    assert "Телефон: +79138402765" in text
    assert (
        "Имя: Ирина" in text and "Маникюр" in text and "Когда: завтра, 15 марта, в 15:00" in text
    )  # the day with its date
    assert "Канал: Telegram" in text and "🔥" in text
    assert f"Ведёт: {NAMES[lead.owner]}" in text
    assert BOOKING in text  # the last messages
    assert _button_texts(card) == ["Беру", "Перезвоню позже", "Записан", "Не целевой", "Передать"]
    assert _button_data(card) == [
        f"{action}:{lead.lead_id}" for action in ("accept", "snooze", "book", "not_target", "transfer")
    ]


def test_take_edits_the_card_answers_the_press_and_tells_the_crm(telegram_ws):
    ws = telegram_ws
    ws.say(BOOKING)
    lead, chat, _ = _card(ws)

    ws.press(chat, f"accept:{lead.lead_id}", ws.card_id(lead))

    lead, _, card = _card(ws)
    assert lead.status == "accepted" and lead.accepted_at is not None
    name = NAMES[lead.owner]
    assert f"✅ Взят: {name}" in card["text"] and "взят в работу" in card["text"]
    assert "edit_date" in card  # edited in place, not sent anew
    assert _button_texts(card) == ["Записан", "Не целевой", "Передать"]
    assert list(ws.tg.answered_callbacks.values()) == ["Готово: взят в работу."]
    assert (lead.lead_id, "accepted") in ws.crm.statuses
    assert ws.aws.store.timers.table.get_item(Key={"timer_id": f"sla#{lead.lead_id}"}).get("Item") is None


def test_a_redelivered_press_is_applied_edited_and_answered_once(telegram_ws):
    ws = telegram_ws
    ws.say(BOOKING)
    lead, chat, _ = _card(ws)
    clock.advance(timedelta(seconds=5))
    ws.post(ws.hooks.telegram_callback(chat, f"accept:{lead.lead_id}", ws.card_id(lead), clock.now()))
    (record,) = ws.aws.receive("RouteQueue")

    # SQS delivers the same record twice (at least once), e.g. to two pollers.
    assert ws.route([record]) == []
    assert ws.route([record]) == []

    assert _calls(ws, "editMessageText") == 1
    assert _calls(ws, "answerCallbackQuery") == 1
    notes = [m for m in ws.aws.store.conversation.history(lead.lead_id) if m.get("direction") == "staff"]
    assert len(notes) == 1
    assert ws.lead(lead.lead_id).version == lead.version + 1


def test_a_rate_limited_card_edit_is_retried_by_the_queue_without_doing_the_press_twice(telegram_ws):
    ws = telegram_ws
    ws.say(BOOKING)
    lead, chat, _ = _card(ws)
    ws.tg.fail_next("rate_limit", method="editMessageText", retry_after=7)
    clock.advance(timedelta(seconds=5))
    ws.post(ws.hooks.telegram_callback(chat, f"not_target:{lead.lead_id}", ws.card_id(lead), clock.now()))
    (record,) = ws.aws.receive("RouteQueue")

    # When: the edit meets 429 — the record goes back to the queue, the lead is already right.
    assert ws.route([record]) == [record["MessageId"]]
    after_first = ws.lead(lead.lead_id)
    assert after_first.status == "not_target"
    # Then: the queue's retry edits the card once; the press is neither re-applied nor re-answered.
    assert ws.route([record]) == []
    _, _, card = _card(ws)
    assert "Статус: не целевой" in card["text"] and _button_texts(card) == []
    assert _calls(ws, "answerCallbackQuery") == 1
    assert ws.lead(lead.lead_id).version == after_first.version
    assert ws.aws.store.staff.state([after_first.owner])[after_first.owner].open_leads == 0


def test_a_card_that_cannot_be_edited_leaves_the_lead_right(telegram_ws):
    ws = telegram_ws
    ws.say(BOOKING)
    lead, chat, _ = _card(ws)

    ws.tg.fail_next("blocked", method="editMessageText")
    ws.press(chat, f"accept:{lead.lead_id}", ws.card_id(lead))
    ws.tg.fail_next("chat_not_found", method="editMessageText")
    ws.press(chat, f"snooze:{lead.lead_id}", ws.card_id(lead))

    assert ws.route_failures == []  # permanent: recorded, not retried for ever
    lead = ws.lead(lead.lead_id)
    assert lead.status == "accepted" and lead.callback_at == clock.now() + timedelta(minutes=SNOOZE_MIN)
    updates = ws.outbox(lead.lead_id, "card_update")
    assert sorted(u["status"] for u in updates) == ["failed", "failed"]
    assert any("403" in u["error"] for u in updates) and any("chat not found" in u["error"] for u in updates)


def test_booked_then_visited_counts_one_visit_however_often_it_is_pressed(telegram_ws):
    ws = telegram_ws
    ws.say(BOOKING)
    lead, chat, _ = _card(ws)
    card = ws.card_id(lead)

    ws.press(chat, f"book:{lead.lead_id}", card)
    _, _, message = _card(ws)
    assert _button_texts(message) == ["Пришёл", "Не пришёл", "Передать"]
    assert "📅 Записан на 15.03 15:00" in message["text"]
    ws.press(chat, f"visited:{lead.lead_id}", card)
    ws.press(chat, f"visited:{lead.lead_id}", card)  # a second tap on a stale card

    lead = ws.lead(lead.lead_id)
    assert lead.status == "visited"
    assert ws.aws.store.contacts.get(lead.contact_id).visits == 1
    assert ws.tg.answered_callbacks and list(ws.tg.answered_callbacks.values())[-1].startswith(
        "Лид уже закрыт"
    )
    assert [s for _, s in ws.crm.statuses][-1] == "visited"


def test_booking_without_a_preferred_time_asks_for_it_in_the_toast(telegram_ws):
    ws = telegram_ws
    ws.say("Сколько стоит маникюр? Меня зовут Ирина, 89138402765")
    lead, chat, _ = _card(ws)

    ws.press(chat, f"book:{lead.lead_id}", ws.card_id(lead))

    assert "запись 20.03 15:00" in list(ws.tg.answered_callbacks.values())[-1]
    assert ws.lead(lead.lead_id).status != "booked"
