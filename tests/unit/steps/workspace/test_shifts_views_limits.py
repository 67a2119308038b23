"""Onboarding, shifts, the manager's view and Telegram's limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadflow import clock
from leadflow_local.inspect import invite
from tests.support.builders import KRS
from tests.support.workspace import ANNA, KATYA, MARINA


def test_used_or_expired_invites_are_refused_and_stop_disconnects(telegram_ws):
    ws = telegram_ws
    assert ws.aws.store.staff.staff_for_chat(str(ANNA)) == "anna"
    assert ws.tg.texts(ANNA)[0].startswith("Готово, Анна!")

    code, _ = invite("olga", None)
    ws.command(6001, f"/start inv-{code}")
    ws.command(6002, f"/start inv-{code}")  # the same code again: used
    expired, _ = invite("igor", None)
    clock.advance(timedelta(days=8))
    ws.command(6003, f"/start inv-{expired}")

    assert ws.aws.store.staff.staff_for_chat("6001") == "olga"
    assert (
        ws.aws.store.staff.staff_for_chat("6002") is None
        and ws.aws.store.staff.staff_for_chat("6003") is None
    )
    assert (
        ws.tg.texts(6002) == ws.tg.texts(6003) == ["Ссылка-приглашение недействительна или уже использована."]
    )

    ws.command(6001, "/stop")
    assert ws.aws.store.staff.staff_for_chat("6001") is None
    assert ws.aws.store.staff.state(["olga"])["olga"].telegram_chat_id is None


def test_off_keeps_new_leads_away_at_once_and_on_brings_them_back(telegram_ws):
    ws = telegram_ws
    ws.command(ANNA, "/off")
    assert "не на смене до 15.03 00:00" in ws.tg.texts(ANNA)[-1]

    for user in (71001, 71002, 71003):
        ws.say("Хочу на маникюр завтра в 15:00, тел 8913840276" + str(user)[-1], user=user)
    owners = {item["owner"] for item in ws.aws.store.leads.table.scan()["Items"]}
    assert owners == {"katya"}

    ws.command(ANNA, "/on")
    for user in (72001, 72002, 72003, 72004):
        ws.say("Хочу на маникюр завтра в 16:00, тел 8913840277" + str(user)[-1], user=user)
    owners = [item["owner"] for item in ws.aws.store.leads.table.scan()["Items"]]
    assert "anna" in owners


def test_off_until_a_past_looking_date_means_next_year(telegram_ws):
    ws = telegram_ws
    clock.freeze(datetime(2026, 12, 20, 4, 0, tzinfo=UTC))
    ws.command(KATYA, "/off 05.01")
    assert "не на смене до 06.01 00:00" in ws.tg.texts(KATYA)[-1]
    off_until = ws.aws.store.staff.state(["katya"])["katya"].off_until
    assert off_until == datetime(2027, 1, 6, 0, 0, tzinfo=KRS)  # the end of 5 January, the salon's time


def test_manager_sees_every_open_lead_with_its_owner_and_sla_state(telegram_ws):
    ws = telegram_ws
    ws.say("Хочу на маникюр завтра в 15:00, меня зовут Ирина, тел 89138402765", user=73001, name="Ирина")
    ws.say("Хочу на маникюр завтра в 17:00, меня зовут Ольга, тел 89138402766", user=73002, name="Ольга")
    leads = [ws.lead(i["lead_id"]) for i in ws.aws.store.leads.table.scan()["Items"]]
    first = leads[0]
    chat = {"anna": ANNA, "katya": KATYA}[first.owner or ""]
    ws.press(chat, f"accept:{first.lead_id}", ws.card_id(first))

    ws.command(MARINA, "/leads")
    view = ws.tg.texts(MARINA)[-1]
    assert view.startswith("Открытые лиды (2)")
    assert all(lead.lead_id in view for lead in leads)
    assert "✅ взят" in view and "⏳ ждёт" in view
    names = {"anna": "Анна", "katya": "Катя"}
    for lead in leads:  # each lead's line names its own owner
        (line,) = [line for line in view.splitlines() if line.startswith(lead.lead_id)]
        assert f"· {names[lead.owner or '']} ·" in line

    ws.command(chat, "/leads")  # a specialist: only their own
    own = ws.tg.texts(chat)[-1]
    assert first.lead_id in own and all(
        lead.lead_id not in own for lead in leads if lead.owner != first.owner
    )

    ws.command(MARINA, "/today")
    assert ws.tg.texts(MARINA)[-1].startswith("Сегодня: лидов 2,")


def test_a_rate_limited_lead_card_is_retried_by_the_queue_and_sent_once(telegram_ws):
    ws = telegram_ws
    clock.advance(timedelta(seconds=30))
    ws.post(
        ws.hooks.telegram_text(74001, "Ирина", "Хочу на маникюр завтра в 15:00, тел 89138402765", clock.now())
    )
    ws.run_score_only()
    (record,) = ws.aws.receive("RouteQueue")

    # When: Telegram answers the card with 429 retry_after — the route record fails, to be retried.
    ws.tg.fail_next("rate_limit", method="sendMessage", retry_after=30)
    assert ws.route([record]) == [record["MessageId"]]
    lead = ws.only_lead()
    (claim,) = ws.outbox(lead.lead_id, "lead_card")
    assert claim["status"] == "retry" and "429" in claim["error"]

    # Then: the queue's next delivery sends the card once; a further redelivery sends nothing.
    assert ws.route([record]) == []
    assert ws.route([record]) == []
    lead = ws.only_lead()
    chat = {"anna": ANNA, "katya": KATYA}[lead.owner or ""]
    cards = [m for m in ws.tg.sent[str(chat)] if m["text"].startswith(f"Лид {lead.lead_id}")]
    assert len(cards) == 1 and lead.card == f"{chat}:{cards[0]['message_id']}"


def test_help_in_a_staff_chat_lists_the_commands(telegram_ws):
    ws = telegram_ws
    ws.command(ANNA, "/help")
    answer = ws.tg.texts(ANNA)[-1]
    assert all(command in answer for command in ("/leads", "/today", "/off", "/on", "/stop", "/bot"))
    assert "ответьте (reply) на карточку" in answer
