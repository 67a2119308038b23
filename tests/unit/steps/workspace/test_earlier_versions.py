"""What an earlier version left behind keeps working: lead cards already in staff chats (their
buttons carry the short codes ``acc:``, ``snz:``, ``bk:``, ``nt:``, ``vis:``, ``ns:``), and lead,
staff, contact and staff-note items written in the earlier format."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadflow import clock
from leadflow.clock import iso
from leadflow.domain.cards import ACTION_LOG, LEGACY_CODES, SNOOZE_MIN
from tests.support.workspace import ANNA, KATYA, MARINA, Workspace

BOOKING = "Здравствуйте! Хочу на маникюр завтра в 15:00, меня зовут Ирина, тел 89138402765"
NEW_ACTIONS = ("accept", "snooze", "book", "not_target", "visited", "no_show", "bot", "transfer")


def _card(ws: Workspace):
    lead = ws.only_lead()
    chat = {"anna": ANNA, "katya": KATYA, "marina": MARINA}[lead.owner or ""]
    assert ws.tg is not None
    card = next(m for m in ws.tg.sent[str(chat)] if m["message_id"] == ws.card_id(lead))
    return lead, chat, card


def _button_data(message: dict) -> list[str]:
    return [
        b["callback_data"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row
    ]


@pytest.mark.parametrize(
    ("codes", "status"),
    [
        (("acc",), "accepted"),
        (("snz",), "accepted"),
        (("nt",), "not_target"),
        (("bk", "vis"), "visited"),
        (("bk", "ns"), "no_show"),
    ],
)
def test_a_card_sent_by_an_earlier_version_still_works_when_pressed(telegram_ws, codes, status):
    ws = telegram_ws
    ws.say(BOOKING)
    lead, chat, _ = _card(ws)
    card_id = ws.card_id(lead)
    pressed_at = []

    # When: the owner presses the buttons of a card the earlier version sent (its callback data).
    for code in codes:
        ws.press(chat, f"{code}:{lead.lead_id}", card_id)
        pressed_at.append(clock.now())

    # Then: each press does what the same button does today, and is answered so.
    lead, _, card = _card(ws)
    assert lead.status == status
    assert list(ws.tg.answered_callbacks.values()) == [
        f"Готово: {ACTION_LOG[LEGACY_CODES[c]]}." for c in codes
    ]
    assert ws.route_failures == []
    assert [s for _, s in ws.crm.statuses][-1] == status
    if codes == ("snz",):
        assert lead.accepted_at == pressed_at[0]
        assert lead.callback_at == pressed_at[0] + timedelta(minutes=SNOOZE_MIN)
    if "vis" in codes:
        assert ws.aws.store.contacts.get(lead.contact_id).visits == 1
    # The card is edited in place; its log names each press; its buttons are today's.
    assert "edit_date" in card
    for code in codes:
        assert ACTION_LOG[LEGACY_CODES[code]] in card["text"]
    assert all(data.partition(":")[0] in NEW_ACTIONS for data in _button_data(card))
    assert all(data.partition(":")[2].startswith(lead.lead_id) for data in _button_data(card))


def test_a_legacy_press_redelivered_is_applied_once(telegram_ws):
    ws = telegram_ws
    ws.say(BOOKING)
    lead, chat, _ = _card(ws)
    clock.advance(timedelta(seconds=5))
    ws.post(ws.hooks.telegram_callback(chat, f"acc:{lead.lead_id}", ws.card_id(lead), clock.now()))
    (record,) = ws.aws.receive("RouteQueue")

    assert ws.route([record]) == []
    assert ws.route([record]) == []

    assert ws.lead(lead.lead_id).version == lead.version + 1
    notes = [m for m in ws.aws.store.conversation.history(lead.lead_id) if m.get("direction") == "staff"]
    assert len(notes) == 1
    assert list(ws.tg.answered_callbacks.values()) == ["Готово: взят в работу."]


def _as_earlier_version(
    ws: Workspace, lead_id: str, *, contact_leads: int, contact_visits: int, open_leads: int
) -> None:
    """Rewrite the lead's items as the earlier version kept them: the lead without the fields this
    version added; the owner's open leads as a bare counter (no set of ids); the contact's visits as
    a bare counter (no set of visited leads); a staff note with the short action code."""
    store = ws.aws.store
    item = store.leads.table.get_item(Key={"lead_id": lead_id})["Item"]
    for new_field in ("message_ids", "possible_match", "crm_error"):
        item.pop(new_field, None)
    item["contact"].pop("phone_verified", None)
    store.leads.table.put_item(Item=item)

    owner = item["owner"]
    store.staff.table.update_item(
        Key={"pk": f"staff#{owner}"},
        UpdateExpression="SET open_leads = :n REMOVE lead_ids",
        ExpressionAttributeValues={":n": open_leads},
    )
    contact = store.contacts.table.get_item(Key={"pk": f"contact#{item['contact_id']}"})["Item"]
    contact.pop("visited", None)
    contact.update(leads=contact_leads, visits=contact_visits)
    store.contacts.table.put_item(Item=contact)
    store.conversation.table.put_item(
        Item={
            "lead_id": lead_id,
            "sk": f"staff#{iso(clock.now())}#telegram:cb:legacy",
            "direction": "staff",
            "staff_id": owner,
            "action": "snz",
        }
    )


def test_lead_staff_and_contact_items_of_an_earlier_version_still_read(telegram_ws):
    ws = telegram_ws
    store = ws.aws.store
    ws.say(BOOKING)
    lead, chat, _ = _card(ws)
    owner = lead.owner or ""
    # Given: the lead, its owner's and its contact's items as the earlier version wrote them
    # (a returning client: her third lead, two visits before).
    _as_earlier_version(ws, lead.lead_id, contact_leads=3, contact_visits=2, open_leads=1)

    # Then: they read.
    legacy = ws.lead(lead.lead_id)
    assert (legacy.message_ids, legacy.possible_match, legacy.crm_error) == ([], None, None)
    assert legacy.contact.phone == "+79138402765" and not legacy.contact.phone_verified
    state = store.staff.state([owner])[owner]
    assert state.telegram_chat_id == str(chat)
    # A bare counter cannot be matched with lead ids, so only the set counts (none yet).
    assert state.open_leads == 0
    contact = store.contacts.get(legacy.contact_id)
    assert (contact.leads, contact.visits, contact.open_lead_id) == (3, 2, lead.lead_id)
    assert contact.is_repeat_client

    # When: the owner works the lead from the card.
    ws.press(chat, f"accept:{lead.lead_id}", ws.card_id(lead))
    _, _, card = _card(ws)
    # The card shows the returning client and the earlier version's log entry.
    assert "Повторный клиент: обращений 3, визитов 2" in card["text"]
    assert f"перезвонит через {SNOOZE_MIN} мин" in card["text"] and "взят в работу" in card["text"]
    ws.press(chat, f"book:{lead.lead_id}", ws.card_id(lead))
    ws.press(chat, f"visited:{lead.lead_id}", ws.card_id(lead))
    ws.press(chat, f"visited:{lead.lead_id}", ws.card_id(lead))  # a second tap

    # Then: the visit is counted once on top of the earlier ones; the contact's lead is closed.
    assert ws.route_failures == []
    assert ws.lead(lead.lead_id).status == "visited"
    contact = store.contacts.get(legacy.contact_id)
    assert (contact.visits, contact.open_lead_id) == (3, None)
    assert store.staff.state([owner])[owner].open_leads == 0

    # And the staff item keeps working: this version's set of lead ids grows and shrinks next to
    # the earlier counter.
    assert store.staff.take_lead(owner, "L-next", capacity=15)
    assert store.staff.state([owner])[owner].open_leads == 1
    store.staff.release_lead(owner, "L-next")
    assert store.staff.state([owner])[owner].open_leads == 0


def test_a_visit_the_earlier_version_counted_is_not_counted_again(telegram_ws):
    ws = telegram_ws
    store = ws.aws.store
    ws.say(BOOKING)
    lead, chat, _ = _card(ws)
    ws.press(chat, f"book:{lead.lead_id}", ws.card_id(lead))
    # Given: the earlier version marked the visit, closed the lead and counted the visit (a bare
    # counter on the contact).
    store.leads.mutate(lead.lead_id, lambda current: current.model_copy(update={"status": "visited"}))
    _as_earlier_version(ws, lead.lead_id, contact_leads=1, contact_visits=1, open_leads=0)
    store.contacts.table.update_item(
        Key={"pk": f"contact#{lead.contact_id}"}, UpdateExpression="SET open_lead_id = :none",
        ExpressionAttributeValues={":none": ""},
    )  # fmt: skip

    # When: a stale card's «Пришёл» is tapped again after the upgrade (the earlier version's code).
    ws.press(chat, f"vis:{lead.lead_id}", ws.card_id(lead))

    # Then: the lead is closed already, and the client still has one visit.
    assert list(ws.tg.answered_callbacks.values())[-1].startswith("Лид уже закрыт")
    assert store.contacts.get(lead.contact_id).visits == 1
