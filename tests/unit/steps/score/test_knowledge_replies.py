"""The assistant answers from the business's knowledge, prices and hours, names every service asked
for, says a window as a window, counts «завтра» from the day the client wrote, asks about a time
already past, keeps an emoji-only lead open for a day, and answers in English — through the real
score step (and route, for the card)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from leadflow import clock, wiring
from leadflow.adapters.crm.bitrix24_crm import crm_lead
from leadflow.domain.models import LeadReady
from leadflow_local.functions import invoke
from leadflow_local.stack import sqs_event
from tests.support.aws import SALON
from tests.support.builders import (
    KRS,
    SATURDAY_11,
    escalator,
    message,
    moment,
    only_lead,
    ready_messages,
    replies,
    score,
    tick,
)

NB, NN = "\u00a0", "\u202f"
HELLO = "Здравствуйте, Ира!"
PHONE = "Оставьте, пожалуйста, номер телефона для связи."

KNOWLEDGE = """
knowledge:
  payment: Оплатить можно наличными, картой или по СБП.
  qa:
    - questions: [подарочный сертификат]
      answer: Да, есть подарочные сертификаты на любую сумму.
  en:
    parking: Free parking in the courtyard.
"""


def salon_with_knowledge() -> str:
    text = SALON.read_text(encoding="utf-8")
    text = text.replace(
        "    name: Центр\n",
        "    name: Центр\n"
        "    address: ул. Карла Маркса, 48\n"
        "    directions: Вход со двора, второй этаж.\n"
        "    parking: Бесплатная парковка во дворе.\n",
    )
    text = text.replace(  # an owner who calls lash extensions what clients call them
        "{id: lashes, name: Ресницы,", "{id: lashes, name: Наращивание ресниц,"
    ).replace(
        "keywords: [ресницы, наращивание ресниц,", "keywords: [ресницы, наращивание, наращивание ресниц,"
    )
    text = text.replace(
        "{id: haircut_women, name: Женская стрижка,",
        "{id: haircut_women, name: Женская стрижка, name_en: women's haircut,",
    ).replace("keywords: [стрижка, женская стрижка,", "keywords: [haircut, стрижка, женская стрижка,")
    return text + KNOWLEDGE


def route_ready(aws) -> None:
    records = [
        {"MessageId": f"r{i}", "ReceiptHandle": "rh", "Body": json.dumps(ready)}
        for i, ready in enumerate(ready_messages(aws))
    ]
    if records:
        invoke("route", sqs_event(records, "RouteQueue"))


def card_of(aws, lead_id: str) -> str:
    cards = [m for m in aws.store.conversation.outbound(lead_id) if m["kind"] == "lead_card"]
    assert cards, "no card was sent"
    return cards[-1]["text"]


def ask(aws, text: str, *, n: int = 1, at: datetime = SATURDAY_11) -> str:
    score(aws, message(n, text, at=at))
    return replies(aws)[-1]["text"]


# --------------------------------------------------------------------------- 1. knowledge


def test_where_parking_hours_and_card_payment_are_answered_from_the_knowledge(aws):
    aws.push_config(salon_with_knowledge())
    clock.freeze(SATURDAY_11)
    expected = {
        "где вы находитесь": f"{HELLO} Наш адрес: ул. Карла Маркса, 48. Вход со двора, второй этаж.",
        "есть парковка?": "Бесплатная парковка во дворе.",
        "до скольки работаете": "Мы работаем: пн–пт 09:00–21:00, сб 10:00–20:00, вс 10:00–18:00.",
        "можно картой?": "Оплатить можно наличными, картой или по СБП.",
        "а сертификаты подарочные у вас есть?": "Да, есть подарочные сертификаты на любую сумму.",
        "работаете в воскресенье?": "Завтра работаем с 10:00 до 18:00.",
    }
    for n, (question, answer) in enumerate(expected.items(), 1):
        clock.advance(timedelta(minutes=3))  # a conversation, not a flood (replies.per_chat)
        assert ask(aws, question, n=n, at=clock.now()) == answer, question
    lead = only_lead(aws)
    assert (lead.intent, lead.temperature, lead.question) == ("question", "cold", None)


def test_a_question_and_a_booking_in_one_message_get_the_answer_and_the_booking(aws):
    aws.push_config(salon_with_knowledge())
    clock.freeze(SATURDAY_11)
    reply = ask(aws, "Где вы находитесь? Хочу на маникюр завтра в 15:00")
    assert reply == (
        f"{HELLO} Наш адрес: ул. Карла Маркса, 48. Вход со двора, второй этаж. "
        f"Записываю вас на маникюр завтра в 15:00? Администратор подтвердит время. {PHONE}"
    )
    lead = only_lead(aws)
    assert (lead.intent, lead.temperature) == ("booking", "hot")
    assert [m["reason"] for m in ready_messages(aws)] == ["hot"]  # handed on as a booking


def test_a_question_without_an_answer_goes_to_a_person_who_sees_it(aws):
    aws.push_config(salon_with_knowledge())
    clock.freeze(SATURDAY_11)
    # Given a question the knowledge does not answer
    assert ask(aws, "А с собакой к вам можно?") == f"{HELLO} Уточню у администратора и вернусь с ответом."
    assert only_lead(aws).question == "А с собакой к вам можно?"
    # Then the manager's card shows it
    route_ready(aws)
    lead = only_lead(aws)
    assert lead.owner == "marina"  # questions go to the manager (salon rule)
    assert "❓ Ждёт ответа администратора: «А с собакой к вам можно?»" in card_of(aws, lead.lead_id)
    # And a second one after routing goes to the owner at once
    clock.advance(timedelta(minutes=5))
    assert (
        ask(aws, "и что взять с собой?", n=2, at=clock.now())
        == "Уточню у администратора и вернусь с ответом."
    )
    (note,) = [m for m in aws.store.conversation.outbound(lead.lead_id) if m["kind"] == "owner_note"]
    assert note["text"].startswith("❓ Ира спрашивает: «и что взять с собой?».")


def test_a_question_in_a_booking_conversation_is_answered_without_the_booking_again(aws):
    aws.push_config(salon_with_knowledge())
    clock.freeze(SATURDAY_11)
    ask(aws, "хочу на маникюр завтра в 15:00")
    clock.advance(timedelta(minutes=1))
    assert ask(aws, "а парковка у вас есть?", n=2, at=clock.now()) == f"Бесплатная парковка во дворе. {PHONE}"
    clock.advance(timedelta(minutes=1))
    assert ask(aws, "а с собакой можно?", n=3, at=clock.now()) == (
        f"Уточню у администратора и вернусь с ответом. {PHONE}"
    )
    lead = only_lead(aws)
    assert (lead.intent, lead.question) == ("booking", "а с собакой можно?")


# --------------------------------------------------------------------------- 2. prices


def test_a_price_question_gets_the_price_and_the_booking_offer(aws):
    clock.freeze(SATURDAY_11)
    assert ask(aws, "Сколько стоит маникюр с покрытием?") == (
        f"{HELLO} Маникюр с покрытием гель-лак — 2{NN}000{NB}₽, 1,5{NB}часа. Записать вас?"
    )


def test_a_price_asked_with_a_time_is_told_and_the_booking_goes_on(aws):
    aws.push_config(salon_with_knowledge())
    clock.freeze(SATURDAY_11)
    reply = ask(aws, "сколько стоит наращивание? и есть окошко в среду?")
    assert reply == (
        f"{HELLO} Наращивание ресниц — 2{NN}500{NB}₽, 2{NB}часа. "
        f"Запишем вас на наращивание ресниц в среду, 18 марта. Во сколько вам удобно? {PHONE}"
    )
    assert only_lead(aws).intent == "booking"


# --------------------------------------------------------------------------- 3. several services


def test_several_services_are_named_and_added_up_in_the_reply_and_on_the_card(aws):
    clock.freeze(SATURDAY_11)
    reply = ask(aws, "маникюр+педикюр завтра после 18")
    assert reply == (
        f"{HELLO} Записываю вас на маникюр и педикюр завтра после 18:00? Администратор подтвердит время. "
        f"Вместе — 3{NN}000{NB}₽, 2{NB}часа 15{NB}минут. {PHONE}"
    )
    route_ready(aws)
    lead = only_lead(aws)
    card = card_of(aws, lead.lead_id)
    assert f"Услуги: Маникюр + Педикюр (3{NN}000{NB}₽, 2{NB}часа 15{NB}минут)" in card
    assert "Когда: завтра, 15 марта, после 18:00" in card


def test_brows_and_lashes_are_both_booked(aws):
    clock.freeze(SATURDAY_11)
    reply = ask(aws, "брови и ресницы в среду вечером")
    assert "Записываю вас на брови и ресницы в среду, 18 марта, вечером?" in reply
    assert f"Вместе — 3{NN}400{NB}₽, 2{NB}часа 45{NB}минут." in reply
    assert only_lead(aws).services == ["brows", "lashes"]


# --------------------------------------------------------------------------- 4. the question's SLA


def test_a_question_stays_cold_but_is_due_within_its_own_sla(aws):
    clock.freeze(SATURDAY_11)
    ask(aws, "Сколько стоит чистка лица?")
    route_ready(aws)
    lead = only_lead(aws)
    assert (lead.intent, lead.temperature) == ("question", "cold")
    timer = aws.store.timers.get(f"sla#{lead.lead_id}")
    assert timer is not None and timer.due - lead.assigned_at == timedelta(minutes=60)  # not a cold day


# --------------------------------------------------------------------------- 5. no contradictions


def test_a_booking_without_a_time_is_not_confirmed_and_asked_in_one_breath(aws):
    clock.freeze(SATURDAY_11)
    reply = ask(aws, "хочу на окрашивание")
    assert reply == f"{HELLO} Запишем вас на окрашивание волос. На какой день и время вам удобно? {PHONE}"
    assert "подтвердит" not in reply


def test_after_18_stays_a_window_in_the_reply(aws):
    wednesday = moment(KRS, "2026-03-11 12:00")
    clock.freeze(wednesday)
    reply = ask(aws, "маникюр в субботу после 18, 89138402765", at=wednesday)
    assert (
        reply
        == f"{HELLO} Записываю вас на маникюр в субботу, 14 марта, после 18:00? Администратор подтвердит время."
    )
    assert "в 18:00" not in reply


def test_evening_tomorrow_is_a_time_enough_to_hand_the_lead_on(aws):
    clock.freeze(SATURDAY_11)
    reply = ask(aws, "педикюр завтра вечером, 89138402765")
    assert reply == f"{HELLO} Записываю вас на педикюр завтра вечером? Администратор подтвердит время."
    assert [m["reason"] for m in ready_messages(aws)] == ["complete"]


def test_a_late_message_says_the_same_day_in_the_reply_and_on_the_card(aws):
    # Written at 23:50 on Friday, processed after midnight: «завтра» is Saturday in both
    written = moment(KRS, "2026-03-13 23:50")
    clock.freeze(moment(KRS, "2026-03-14 00:10"))
    reply = ask(aws, "маникюр завтра в 12, 89138402765", at=written)
    assert "маникюр завтра в 12:00?" in reply
    lead = only_lead(aws)
    assert str(lead.preferred_date) == "2026-03-14"
    route_ready(aws)
    assert "Когда: в субботу, 14 марта, в 12:00" in card_of(aws, lead.lead_id)


def test_a_redelivered_message_is_answered_as_of_the_day_it_was_written(aws):
    written = moment(KRS, "2026-03-13 22:00")
    clock.freeze(moment(KRS, "2026-03-14 09:30"))  # the queue handed it over next morning
    assert "маникюр завтра в 12:00?" in ask(aws, "маникюр завтра в 12", at=written)


def test_a_time_already_past_today_is_asked_about_never_confirmed(aws):
    at = moment(KRS, "2026-03-14 13:40")
    clock.freeze(at)
    reply = ask(aws, "сегодня в 10 утра на маникюр", at=at)
    assert reply == (
        f"{HELLO} Запишем вас на маникюр. Сегодня в 10:00 уже не получится — на какое время вам удобно? {PHONE}"
    )
    route_ready(aws)  # hot (today): handed on, and the card says the time is gone
    assert "Когда: сегодня, 14 марта, в 10:00 (уже прошло)" in card_of(aws, only_lead(aws).lead_id)


# --------------------------------------------------------------------------- 6. emoji only


def test_emoji_only_is_greeted_and_closed_after_a_quiet_day(aws):
    clock.freeze(SATURDAY_11)
    assert ask(aws, "💅💅🔥") == f"{HELLO} Чем можем помочь?"
    lead = only_lead(aws)
    assert (lead.intent, lead.is_open) == ("not_target", True)
    assert ready_messages(aws) == []  # route does not close it yet
    # When a day passes without words
    tick(escalator(), SATURDAY_11 + timedelta(hours=24, minutes=1))
    (ready,) = ready_messages(aws)
    assert LeadReady.model_validate(ready).reason == "not_target"
    invoke(
        "route",
        sqs_event([{"MessageId": "r", "ReceiptHandle": "rh", "Body": json.dumps(ready)}], "RouteQueue"),
    )
    lead = only_lead(aws)
    assert lead.status == "not_target" and lead.owner is None


def test_emoji_then_words_make_a_lead_that_shows_the_emoji_on_its_card(aws):
    clock.freeze(SATURDAY_11)
    ask(aws, "💅💅🔥")
    clock.advance(timedelta(hours=2))
    reply = ask(aws, "хочу на маникюр завтра в 15:00, 89138402765", n=2, at=clock.now())
    assert reply == "Записываю вас на маникюр завтра в 15:00? Администратор подтвердит время."
    route_ready(aws)
    lead = only_lead(aws)
    assert lead.intent == "booking" and lead.owner
    assert "— 💅💅🔥" in card_of(aws, lead.lead_id)
    tick(escalator(), SATURDAY_11 + timedelta(hours=25))  # the day's timer finds a real lead
    assert only_lead(aws).is_open and only_lead(aws).status != "not_target"


# --------------------------------------------------------------------------- 7. English


def test_an_english_client_is_answered_in_english(aws):
    aws.push_config(salon_with_knowledge())
    clock.freeze(SATURDAY_11)
    reply = ask(aws, "Can I book a haircut tomorrow at 11?")
    assert reply == (
        "Hello, Ира! Shall I book you in for women's haircut tomorrow at 11:00? An administrator will "
        "confirm the time. Please leave a phone number so we can reach you."
    )
    lead = only_lead(aws)
    assert (lead.language, lead.service, str(lead.preferred_date)) == ("en", "haircut_women", "2026-03-15")
    assert lead.public_view()["language"] == "en"  # `leadflow leads --json`
    route_ready(aws)
    assert "Язык: английский — клиенту отвечаем по-английски" in card_of(aws, lead.lead_id)
    clock.advance(timedelta(minutes=1))
    # a question in the booking conversation is answered, and only what is missing asked again
    assert ask(aws, "Is there parking?", n=2, at=clock.now()) == (
        "Free parking in the courtyard. Please leave a phone number so we can reach you."
    )
    assert ask(aws, "where are you located? +79138402765", n=3, at=clock.now()) == (
        "Our address: ул. Карла Маркса, 48. Вход со двора, второй этаж."
    )


def test_a_russian_client_stays_russian_after_a_latin_ok(aws):
    clock.freeze(SATURDAY_11)
    ask(aws, "хочу на маникюр завтра в 15")
    ask(aws, "ok", n=2)
    assert only_lead(aws).language == "ru"


# --------------------------------------------------------------------------- 8. the window in Bitrix24


def test_the_window_goes_to_bitrix24_comments(aws):
    clock.freeze(SATURDAY_11)
    ask(aws, "маникюр+педикюр завтра после 18")
    comments = crm_lead(only_lead(aws), wiring.business(), None).comments
    assert "Желаемое время: 2026-03-15 после 18:00" in comments
    assert f"Услуги: Маникюр + Педикюр (3{NN}000{NB}₽, 2{NB}часа 15{NB}минут)" in comments
