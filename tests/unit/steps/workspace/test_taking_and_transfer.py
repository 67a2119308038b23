"""Who may act on a lead: a colleague of the branch may take a lead nobody has taken yet
(«Беру» makes them its owner), everybody else hears whose lead it is; «Передать» hands a lead to
a chosen colleague, who has to take it."""

from __future__ import annotations

from tests.support.workspace import ANNA, CLIENT, KATYA, Workspace

BOOKING = "Здравствуйте! Хочу на маникюр завтра в 15:00, меня зовут Ирина, тел 89138402765"
OLGA = 5004  # a hair stylist of the same branch
CHATS = {"anna": ANNA, "katya": KATYA}
NAMES = {"anna": "Анна", "katya": "Катя", "olga": "Ольга"}


def _open_leads(ws: Workspace, *staff: str) -> dict[str, int]:
    return {s: state.open_leads for s, state in ws.aws.store.staff.state(list(staff)).items()}


def _card_in(ws: Workspace, chat: int, message_id: int) -> dict:
    assert ws.tg is not None
    return next(m for m in ws.tg.sent[str(chat)] if m["message_id"] == message_id)


def _buttons(message: dict) -> list[tuple[str, str]]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [(b["text"], b["callback_data"]) for row in rows for b in row]


def test_a_colleague_takes_a_lead_nobody_took_and_the_former_owner_hears_whose_it_is(telegram_ws):
    ws = telegram_ws
    ws.connect("olga", OLGA)
    ws.say(BOOKING)
    lead = ws.only_lead()
    first = lead.owner or ""
    assert _open_leads(ws, first, "olga") == {first: 1, "olga": 0}

    # When: Olga presses «Беру» before the owner did.
    ws.press(OLGA, f"accept:{lead.lead_id}", ws.card_id(lead))

    # Then: she owns the lead, the capacity moved with it, the card says who has it.
    taken = ws.lead(lead.lead_id)
    assert (taken.owner, taken.status) == ("olga", "accepted") and taken.accepted_at
    assert list(ws.tg.answered_callbacks.values())[-1] == "Готово: взят в работу."
    assert _open_leads(ws, first, "olga") == {first: 0, "olga": 1}
    card = _card_in(ws, CHATS[first], ws.card_id(lead))
    assert "Ведёт: Ольга" in card["text"] and "✅ Взят: Ольга" in card["text"]

    # When: the former owner presses a button on the card, or answers the client from it.
    ws.press(CHATS[first], f"book:{lead.lead_id}", ws.card_id(lead))
    answered = len(ws.tg.texts(CLIENT))
    ws.reply_to_card(CHATS[first], ws.card_id(lead), "Ирина, здравствуйте!")

    # Then: nothing changes; they are told whose lead it is, and the client hears nothing.
    assert list(ws.tg.answered_callbacks.values())[-1] == "Лид ведёт Ольга."
    assert ws.tg.texts(CHATS[first])[-1] == "Лид ведёт Ольга."
    assert len(ws.tg.texts(CLIENT)) == answered
    after = ws.lead(lead.lead_id)
    assert (after.owner, after.status, after.handed_over) == ("olga", "accepted", False)
    assert ws.route_failures == []


def test_a_lead_taken_by_its_owner_is_not_taken_from_them(telegram_ws):
    ws = telegram_ws
    ws.connect("olga", OLGA)
    ws.say(BOOKING)
    lead = ws.only_lead()
    owner = lead.owner or ""
    ws.press(CHATS[owner], f"accept:{lead.lead_id}", ws.card_id(lead))

    ws.press(OLGA, f"accept:{lead.lead_id}", ws.card_id(lead))

    assert list(ws.tg.answered_callbacks.values())[-1] == f"Лид ведёт {NAMES[owner]}."
    assert ws.lead(lead.lead_id).owner == owner
    assert _open_leads(ws, owner, "olga") == {owner: 1, "olga": 0}


def test_transfer_hands_the_lead_to_the_chosen_colleague_who_takes_it(telegram_ws):
    ws = telegram_ws
    ws.say(BOOKING)
    lead = ws.only_lead()
    owner = lead.owner or ""
    other = "katya" if owner == "anna" else "anna"
    chat = CHATS[owner]
    ws.press(chat, f"accept:{lead.lead_id}", ws.card_id(lead))

    # When: the owner presses «Передать»: a list of colleagues to choose from.
    ws.press(chat, f"transfer:{lead.lead_id}", ws.card_id(lead))
    menu = ws.tg.sent[str(chat)][-1]
    assert menu["text"] == "Кому передать лид?"
    choices = dict(_buttons(menu))
    assert choices[NAMES[other]] == f"transfer:{lead.lead_id}:{other}"
    assert NAMES[owner] not in choices
    assert list(ws.tg.answered_callbacks.values())[-1] == "Выберите коллегу."

    # …and picks a colleague.
    ws.press(chat, choices[NAMES[other]], menu["message_id"])

    # Then: the colleague owns it, untaken, with a card of their own that has «Беру».
    moved = ws.lead(lead.lead_id)
    assert (moved.owner, moved.status, moved.accepted_at) == (other, "assigned", None)
    assert list(ws.tg.answered_callbacks.values())[-1] == f"Передан: {NAMES[other]}."
    assert _open_leads(ws, owner, other) == {owner: 0, other: 1}
    assert moved.card and moved.card.startswith(f"{CHATS[other]}:")
    new_card = _card_in(ws, CHATS[other], ws.card_id(moved))
    assert _buttons(new_card)[0] == ("Беру", f"accept:{lead.lead_id}")
    assert f"Ведёт: {NAMES[other]}" in new_card["text"]

    # When: the colleague takes it from their card.
    ws.press(CHATS[other], f"accept:{lead.lead_id}", ws.card_id(moved))
    taken = ws.lead(lead.lead_id)
    assert (taken.owner, taken.status) == (other, "accepted")
    assert ws.route_failures == []
