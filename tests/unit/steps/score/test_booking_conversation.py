"""Booking for real, through the score step's handler: the reply offers free slots near the wish,
the client's answer books one, the confirmation names the day, time, master, price, address and
payment; a lost race offers the next slots; a full day offers the nearest one; a named master
gets her own slots; a service without a duration (or the feature off) keeps today's reply."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from leadflow import clock, wiring
from leadflow.domain.schedule import Slot
from tests.support.aws import atomic_moto_writes, aws_stack
from tests.support.builders import message, replies, score

MSK = ZoneInfo("Europe/Moscow")
TUESDAY_10 = datetime(2026, 12, 1, 10, 0, tzinfo=MSK)
SALON = """
name: Салон «Лайм»
timezone: Europe/Moscow
services:
  - {id: hair_coloring, name: Окрашивание волос, group: hair, price: 4500, duration_min: 90,
     keywords: [окрашивание]}
  - {id: haircut_women, name: Женская стрижка, group: hair, price: 1500, duration_min: 60,
     keywords: [стрижка]}
  - {id: consult, name: Консультация трихолога, price: 1000, keywords: [трихолог, консультация]}
branches:
  - id: center
    name: Центр
    address: ул. Ленина, 10
    directions: Вход со двора, второй этаж
    hours: {mon: ["10:00-20:00"], tue: ["10:00-20:00"], wed: ["10:00-20:00"], thu: ["10:00-20:00"],
            fri: ["10:00-20:00"], sat: ["10:00-20:00"], sun: ["10:00-20:00"]}
staff:
  - {id: olga, name: Ольга, skills: [hair], branch: center,
     shifts: {thu: ["12:00-20:00"], sat: ["12:00-18:00"]}}
  - {id: vera, name: Вера, skills: [hair], branch: center, shifts: {sat: ["10:00-15:00"]}}
  - {id: marina, name: Марина, role: manager, branch: center}
knowledge: {payment: Оплатить можно онлайн или на месте.}
qualify: {phone_when_missing: false}
booking: {enabled: true, step_min: 30, lead_time_min: 60,
          prepayment_url: "https://pay.example.ru/pay?amount={amount}&order={lead_id}"}
"""


@pytest.fixture
def salon(request):
    clock.freeze(TUESDAY_10)
    with aws_stack(getattr(request, "param", SALON)) as stack:
        yield stack


def client(n: int, text: str, chat: str = "4242", at: datetime | None = None):
    m = message(n, text, at=at or clock.now())
    return m.model_copy(update={"chat_id": chat, "contact": m.contact.model_copy(update={"channel_user_id": chat}),
                                "message_id": f"telegram:{chat}:{n}"})  # fmt: skip


def lead_of(stack, chat: str = "4242"):
    contact = stack.store.contacts.resolve([f"telegram#{chat}"]).contact
    return stack.store.leads.get(contact.open_lead_id or contact.last_lead_id)


def last_reply(stack) -> str:
    return replies(stack)[-1]["text"]


def test_offer_pick_booked_and_confirmed(salon) -> None:
    # Given a client who wants colouring on Saturday afternoon
    score(salon, client(1, "Здравствуйте, хочу на окрашивание в субботу после обеда"))
    # Then the reply offers real slots near the wish (afternoon: from 12:00), by the masters' shifts
    assert last_reply(salon) == (
        "Здравствуйте, Ира! Есть окна в субботу, 5 декабря: 12:00, 12:30, 13:00. Какое удобно?"
    )
    lead = lead_of(salon)
    assert [f"{o.start.astimezone(MSK):%H:%M}" for o in lead.offered] == ["12:00", "12:30", "13:00"]

    # When she picks the second
    clock.advance(timedelta(minutes=2))
    score(salon, client(2, "давайте второе"))

    # Then it is booked, in the calendar and on the lead, and she is told everything
    lead = lead_of(salon)
    assert lead.status == "booked" and lead.appointment_at == datetime(2026, 12, 5, 12, 30, tzinfo=MSK)
    assert lead.booked_master in ("olga", "vera") and lead.offered == []
    master = {"olga": "Ольга", "vera": "Вера"}[lead.booked_master]
    assert last_reply(salon) == (
        f"Готово! Записали вас на окрашивание волос в субботу, 5 декабря, в 12:30, мастер — {master}. "
        "Стоимость — 4\u202f500\u00a0₽. Адрес: ул. Ленина, 10, вход со двора, второй этаж. "
        "Оплатить можно онлайн или на месте. "
        f"Предоплата: https://pay.example.ru/pay?amount=4500&order={lead.lead_id}"
    )
    booking = wiring.booking(wiring.business())
    busy = booking.busy(lead.appointment_at.date(), clock.now())
    assert [(b.master, b.start) for b in busy] == [(lead.booked_master, lead.appointment_at)]
    # and the reminders are scheduled like any booking
    timers = [t for t in salon.store.timers.table.scan()["Items"] if t.get("lead_id") == lead.lead_id]
    due = sorted(t["due_at"] for t in timers if t["kind"] == "appointment")
    assert len(due) == 2  # 24 h and 2 h before


def test_a_pick_by_clock_time_and_the_other_holds_released(salon) -> None:
    score(salon, client(1, "окрашивание в субботу в 13"))
    assert "12:30, 13:00, 13:30" in last_reply(salon)
    clock.advance(timedelta(minutes=1))
    score(salon, client(2, "в 13:30 отлично"))
    lead = lead_of(salon)
    assert lead.appointment_at == datetime(2026, 12, 5, 13, 30, tzinfo=MSK)
    # another client is offered the released 12:30 and 13:00 again
    score(salon, client(1, "окрашивание в субботу в 13", chat="777"))
    assert "12:30, 13:00" in last_reply(salon)


def test_a_held_slot_is_not_offered_to_another_client(salon) -> None:
    score(salon, client(1, "Хочу на окрашивание в субботу в 12:30"))
    first = lead_of(salon)
    score(salon, client(1, "Хочу на окрашивание в субботу в 12:30", chat="777"))
    second = lead_of(salon, "777")
    held_by_first = {(o.start, o.master) for o in first.offered}
    assert held_by_first.isdisjoint({(o.start, o.master) for o in second.offered})


def test_a_lost_race_offers_the_next_free_slots(salon) -> None:
    score(salon, client(1, "окрашивание в субботу в 16"))
    assert last_reply(salon).endswith("Есть окна в субботу, 5 декабря: 15:30, 16:00, 16:30. Какое удобно?")
    lead = lead_of(salon)
    # the hold runs out and somebody books 16:00 at the desk
    clock.advance(timedelta(minutes=20))
    booking = wiring.booking(wiring.business())
    sixteen = next(o for o in lead.offered if o.start.hour == 16 and o.start.minute == 0)
    desk = lead.model_copy(update={"lead_id": "desk", "service": "hair_coloring"})
    booking.book(Slot(sixteen.start, sixteen.master, 90), desk, clock.now())
    score(salon, client(2, "давайте в 16:00"))
    text = last_reply(salon)
    assert text.startswith("Это время только что заняли. Есть окна в субботу, 5 декабря:")
    assert lead_of(salon).status != "booked"
    assert lead_of(salon).offered and all(
        not (o.start == sixteen.start and o.master == sixteen.master) for o in lead_of(salon).offered
    )


def test_no_slot_that_day_offers_the_nearest_day(salon) -> None:
    score(salon, client(1, "хочу на окрашивание в пятницу вечером"))
    assert last_reply(salon) == (
        "Здравствуйте, Ира! В пятницу, 4 декабря свободных окон нет. "
        "Есть в субботу, 5 декабря: 15:30, 16:00, 16:30. Какое удобно?"
    )


def test_a_named_master_gets_her_own_slots_with_her_name(salon) -> None:
    score(salon, client(1, "к Оле на стрижку в субботу утром"))
    lead = lead_of(salon)
    assert lead.master == "olga"
    assert {o.master for o in lead.offered} == {"olga"}
    assert last_reply(salon) == (
        "Здравствуйте, Ира! Есть окна в субботу, 5 декабря: 12:00 (Ольга), 12:30 (Ольга), 13:00 (Ольга). "
        "Какое удобно?"
    )


def test_a_service_without_duration_gets_no_offer(salon) -> None:
    score(salon, client(1, "Хочу на консультацию трихолога в субботу в 12"))
    assert "Есть окна" not in last_reply(salon)
    assert "Администратор подтвердит время" in last_reply(salon)
    assert lead_of(salon).offered == []


@pytest.mark.parametrize(
    "salon", [SALON.replace("lead_time_min: 60,", "lead_time_min: 60, hold_min: 0,")], indirect=True
)
def test_fifty_clients_answering_at_once_never_share_a_master(salon) -> None:
    """50 clients offered overlapping slots (no holds: everybody is offered the same three) pick at
    the same moment: each master's time is booked at most once, and every client is either booked
    or told the time was taken and offered other slots."""
    chats = [str(9000 + i) for i in range(50)]
    picks = ["первое", "второе", "третье"]
    with atomic_moto_writes():
        for chat in chats:
            score(salon, client(1, "окрашивание в субботу в 13", chat=chat))
        assert len({last_reply(salon)} | {r["text"] for r in replies(salon)}) == 1  # one offer for all
        barrier = threading.Barrier(len(chats))
        errors: list[BaseException] = []

        def pick(chat: str) -> None:
            barrier.wait()
            try:
                wiring.score_step().handle(client(2, picks[int(chat) % 3], chat=chat))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=pick, args=(c,)) for c in chats]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    leads = [lead_of(salon, c) for c in chats]
    booked = [lead for lead in leads if lead.status == "booked"]
    assert booked, "nobody got a slot"
    for a in booked:
        for b in booked:
            if a is not b and a.booked_master == b.booked_master:
                a_end = a.appointment_at + timedelta(minutes=90)
                b_end = b.appointment_at + timedelta(minutes=90)
                assert a_end <= b.appointment_at or b_end <= a.appointment_at, (
                    "two clients in one master's time"
                )
    for lead in leads:
        assert lead.status == "booked" or lead.offered, [
            r["text"] for r in replies(salon) if r["lead_id"] == lead.lead_id
        ]
    unbooked = [lead for lead in leads if lead.status != "booked"]
    texts = {r["lead_id"]: r["text"] for r in replies(salon)}
    for lead in unbooked:
        said = texts[lead.lead_id]
        assert said.startswith("Это время только что заняли."), said


def test_a_message_that_picks_nothing_keeps_the_offer(salon) -> None:
    score(salon, client(1, "окрашивание в субботу в 13"))
    first = [(o.start, o.master) for o in lead_of(salon).offered]
    clock.advance(timedelta(minutes=1))
    score(salon, client(2, "мой номер +7 913 840-27-65"))
    lead = lead_of(salon)
    assert [(o.start, o.master) for o in lead.offered] == first  # its own holds do not push it elsewhere
    assert lead.status != "booked" and lead.contact.phone == "+79138402765"


def test_a_client_who_cancels_gives_the_time_back(salon) -> None:
    score(salon, client(1, "окрашивание в субботу в 13"))
    score(salon, client(2, "давайте в 13:00"))
    lead = lead_of(salon)
    assert lead.status == "booked"
    booking = wiring.booking(wiring.business())
    assert booking.busy(lead.appointment_at.date(), clock.now())
    score(salon, client(3, "нет, отмените"))
    assert salon.store.leads.get(lead.lead_id).status == "cancelled"
    assert booking.busy(lead.appointment_at.date(), clock.now()) == []


def test_a_slot_the_client_picks_after_routing_reaches_the_crm(salon, monkeypatch) -> None:
    # The bot books a lead that already has its owner and its CRM record: the CRM must say
    # booked too (the sheet row said «назначен» while the lead was booked).
    from leadflow_local.functions import invoke
    from leadflow_local.stack import sqs_event
    from tests.fakes.bitrix24_server import Bitrix24Portal
    from tests.support.builders import route

    with Bitrix24Portal() as portal:
        monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
        wiring.reset()
        score(salon, client(1, "Здравствуйте, хочу на окрашивание в субботу после обеда, 89135550111"))
        lead = route(salon.store, lead_of(salon).lead_id)
        ((entity, crm_id),) = portal.records_with_origin(lead.lead_id)
        field, booked = {"lead": ("STATUS_ID", "PROCESSED"), "deal": ("STAGE_ID", "EXECUTING")}[entity]
        assert portal.portal.table(entity)[crm_id].get(field) != booked
        salon.receive("RouteQueue")  # what routing itself queued

        clock.advance(timedelta(minutes=2))
        score(salon, client(2, "давайте второе"))

        queued = salon.receive("RouteQueue")
        assert ['"reason":"booked"' in m["Body"].replace(" ", "") for m in queued] == [True]  # route is told
        assert invoke("route", sqs_event(queued, "RouteQueue")) == {"batchItemFailures": []}
        assert lead_of(salon).status == "booked"
        assert portal.portal.table(entity)[crm_id][field] == booked
        # a redelivery changes nothing more
        assert invoke("route", sqs_event(queued, "RouteQueue")) == {"batchItemFailures": []}
        assert len(portal.records_with_origin(lead.lead_id)) == 1


def test_the_bots_confirmation_links_the_visit_as_an_ics_with_public_base_url(salon, monkeypatch) -> None:
    from leadflow_local.functions import invoke
    from leadflow_local.stack import api_gateway_event

    monkeypatch.setenv("PUBLIC_BASE_URL", "https://lime.example.ru/")
    wiring.reset()
    score(salon, client(1, "Здравствуйте, хочу на окрашивание в субботу после обеда"))
    clock.advance(timedelta(minutes=2))
    score(salon, client(2, "давайте второе"))
    lead = lead_of(salon)
    assert lead.calendar_token  # saved with the booking
    url = f"https://lime.example.ru/ics/{lead.calendar_token}.ics"
    assert last_reply(salon).endswith(f"Предоплата: https://pay.example.ru/pay?amount=4500&order={lead.lead_id} "
                                      f"Добавить в календарь: {url}")  # fmt: skip
    event = api_gateway_event("GET", url.removeprefix("https://lime.example.ru"), "", {}, b"", "203.0.113.9")
    answer = invoke("panel", event)
    assert answer["statusCode"] == 200 and answer["headers"]["Content-Type"] == "text/calendar; charset=utf-8"
    body = answer["body"]
    assert (
        "DTSTART:20261205T093000Z\r\n" in body and "DTEND:20261205T110000Z\r\n" in body
    )  # 12:30 MSK, 90 min
    assert "SUMMARY:Окрашивание волос — Салон «Лайм»\r\n" in body
    assert "LOCATION:ул. Ленина\\, 10\r\n" in body and "DESCRIPTION:Вход со двора\\, второй этаж\r\n" in body
