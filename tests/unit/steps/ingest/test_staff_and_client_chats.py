"""Ingest sorts Telegram updates by chat, once: a staff member's chat is staff traffic (a button, a
reply to a card, a command, a plain message: one StaffEvent straight to route), anybody else's is
a client's message (one InboundMessage to score). Counted in SendMessage calls per queue, through
ingest and the handlers that take the messages after it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from leadflow import clock
from leadflow.domain.models import Lead
from leadflow_local.functions import invoke
from leadflow_local.stack import api_gateway_event, sqs_event
from leadflow_local.webhooks import Delivery, Webhooks
from tests.support.builders import client_writes, route
from tests.support.webhooks import SECRETS, SOURCE_IP

SATURDAY_11 = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)  # 11:00 in Krasnoyarsk, the salon is open
STAFF_CHATS = {"anna": 5001, "katya": 5002}
CLIENT = 70001
HOOKS = Webhooks("http://unused", SECRETS)


def _post(delivery: Delivery) -> None:
    event = api_gateway_event(
        "POST", f"/webhooks/{delivery.channel}", delivery.query, delivery.headers, delivery.body, SOURCE_IP
    )
    assert invoke("ingest", event)["statusCode"] == 200


def _work_queues(env) -> None:
    """Run score and route on what waits for them until both queues are empty."""
    for _ in range(10):
        scored, routed = env.receive("ScoreQueue"), env.receive("RouteQueue")
        if scored:
            assert invoke("score", sqs_event(scored, "ScoreQueue")) == {"batchItemFailures": []}
        if routed:
            assert invoke("route", sqs_event(routed, "RouteQueue")) == {"batchItemFailures": []}
        if not scored and not routed:
            return
    raise AssertionError("the queues never emptied")


def _answers(env, chat: int) -> list[str]:
    """What staff were told in their chat that belongs to no lead (command answers and the like)."""
    return [m["text"] for m in env.store.conversation.outbound("-") if m["to"] == str(chat)]


@pytest.fixture
def owned_lead(env) -> Lead:
    """A client's lead, routed and carded, with both nail specialists' chats connected."""
    clock.freeze(SATURDAY_11)
    for staff_id, chat in STAFF_CHATS.items():
        env.store.staff.connect_chat(staff_id, str(chat))
    lead = client_writes(env.store, "Хочу на маникюр завтра в 15:00, тел 89138402765", chat=str(CLIENT))
    env.receive("RouteQueue")  # the LeadReady score sent: routed here directly
    lead = route(env.store, lead.lead_id)
    assert lead.owner in STAFF_CHATS and lead.card
    clock.advance(timedelta(minutes=1))
    return lead


def _card_id(lead: Lead) -> int:
    return int(lead.card.rpartition(":")[2])  # type: ignore[union-attr]


def test_a_button_press_crosses_exactly_one_queue(env, owned_lead, queue_sends):
    queue_sends.clear()  # what making the lead sent
    # When the owner presses «Беру» on the lead's card
    chat = STAFF_CHATS[owned_lead.owner]  # type: ignore[index]
    _post(HOOKS.telegram_callback(chat, f"accept:{owned_lead.lead_id}", _card_id(owned_lead), clock.now()))
    _work_queues(env)
    # Then the press went ingest → route and nowhere else, and route acted on it
    assert queue_sends == Counter({"RouteQueue": 1})
    assert env.store.leads.get(owned_lead.lead_id).status == "accepted"  # type: ignore[union-attr]


def test_a_plain_message_in_a_staff_chat_goes_to_route_not_score(env, owned_lead, queue_sends):
    queue_sends.clear()
    leads_before = len(env.store.leads.table.scan()["Items"])
    # When a staff member writes in their chat without replying to a card
    chat = STAFF_CHATS[owned_lead.owner]  # type: ignore[index]
    _post(HOOKS.telegram_text(chat, "Staff", "Добрый день, я на месте", clock.now()))
    _work_queues(env)
    # Then it is staff traffic: one message to route, none to score — no lead, no reply as to a client
    assert queue_sends == Counter({"RouteQueue": 1})
    assert len(env.store.leads.table.scan()["Items"]) == leads_before
    assert any("ответьте (reply) на карточку" in text for text in _answers(env, chat))


def test_a_staff_reply_to_a_card_goes_to_route_and_reaches_the_client(env, owned_lead, queue_sends):
    queue_sends.clear()
    chat = STAFF_CHATS[owned_lead.owner]  # type: ignore[index]
    card = f"Лид {owned_lead.lead_id}"  # the card's first line, as Telegram quotes it
    _post(
        HOOKS.telegram_reply_to_card(
            chat, _card_id(owned_lead), "Ждём вас завтра в 15:00!", clock.now(), card
        )
    )
    _work_queues(env)
    assert queue_sends == Counter({"RouteQueue": 1})
    (reply,) = [m for m in env.store.conversation.outbound(owned_lead.lead_id) if m["kind"] == "staff_reply"]
    assert (reply["to"], reply["text"]) == (str(CLIENT), "Ждём вас завтра в 15:00!")


def test_a_staff_command_goes_to_route(env, owned_lead, queue_sends):
    queue_sends.clear()
    chat = STAFF_CHATS[owned_lead.owner]  # type: ignore[index]
    _post(HOOKS.telegram_command(chat, "/leads", clock.now()))
    _work_queues(env)
    assert queue_sends == Counter({"RouteQueue": 1})
    assert any(owned_lead.lead_id in text for text in _answers(env, chat))


def test_a_clients_message_goes_to_score_and_route_gets_only_the_ready_lead(env, queue_sends):
    clock.freeze(SATURDAY_11)
    env.store.staff.connect_chat("anna", str(STAFF_CHATS["anna"]))
    # When a client (not a staff chat) writes a complete booking
    _post(
        HOOKS.telegram_text(CLIENT, "Ирина", "Хочу на маникюр завтра в 15:00, тел 89138402765", clock.now())
    )
    _work_queues(env)
    # Then ingest sent it to score, and score handed the ready lead to route, once each
    assert queue_sends == Counter({"ScoreQueue": 1, "RouteQueue": 1})
    (item,) = env.store.leads.table.scan()["Items"]
    assert env.store.leads.get(item["lead_id"]).owner in STAFF_CHATS  # type: ignore[union-attr]


def test_a_clients_command_is_a_message_to_score(env, queue_sends):
    clock.freeze(SATURDAY_11)
    env.store.staff.connect_chat("anna", str(STAFF_CHATS["anna"]))
    # A client who types /start (or any command) is a client, not staff
    _post(HOOKS.telegram_command(CLIENT, "/leads", clock.now()))
    assert queue_sends == Counter({"ScoreQueue": 1})
    assert env.receive("RouteQueue") == []
