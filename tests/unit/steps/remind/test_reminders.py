"""Appointment reminders, the client's answers, nudges, nurture, win-back and quiet hours,
driven through the real remind and score steps on moto."""

from __future__ import annotations

from datetime import timedelta

from leadflow import clock, wiring
from leadflow.domain.models import Lead, LeadStatus, StaffEvent
from tests.support.aws import SALON
from tests.support.builders import (
    RecordingCrm,
    client_writes,
    local,
    outbox,
    reminders,
    route,
    schedule_booking,
    sent,
    tick,
    use_business,
    use_crm,
)

CHAT = "5001"


def _booked(aws, monkeypatch, appointment, *, text="Хочу на маникюр"):
    """A client who wrote on Tuesday 10:00, was routed and booked by staff for ``appointment``;
    every step wiring builds gets the returned CRM."""
    clock.freeze(local(2026, 3, 17, 10))
    crm = RecordingCrm()
    use_crm(monkeypatch, crm)
    lead = client_writes(aws.store, text, chat=CHAT)
    lead = route(aws.store, lead.lead_id)

    def book(current: Lead) -> Lead:
        current.status, current.appointment_at, current.accepted_at = (
            LeadStatus.booked,
            appointment,
            clock.now(),
        )
        return current

    booked = aws.store.leads.mutate(lead.lead_id, book)
    schedule_booking(booked)
    return crm, booked


def test_reminders_24h_and_2h_before_in_the_clients_channel(aws, monkeypatch):
    _, lead = _booked(aws, monkeypatch, local(2026, 3, 19, 15))
    job = reminders()
    tick(job, local(2026, 3, 18, 14, 55), step=timedelta(minutes=5), times=2)
    assert sent(aws.store, lead.lead_id, "reminder") == []

    tick(job, local(2026, 3, 19, 14, 0), step=timedelta(minutes=5), times=2)
    day_before, two_hours = sent(aws.store, lead.lead_id, "reminder")
    assert (day_before["channel"], day_before["to"]) == ("telegram", CHAT)
    assert day_before["text"] == ("Напоминаем: вы записаны на маникюр завтра в 15:00. "
                                  "Подтвердите, пожалуйста: ответьте «да» или «нет».")  # fmt: skip
    assert "сегодня в 15:00" in two_hours["text"]
    assert [m["sent_at"][:16] for m in (day_before, two_hours)] == ["2026-03-18T08:00", "2026-03-19T06:00"]


def test_reminder_hours_are_configurable(aws, monkeypatch):
    business = wiring.business().model_copy(deep=True)
    business.reminders.before_appointment_h = [48, 3]
    use_business(monkeypatch, business)
    _, lead = _booked(aws, monkeypatch, local(2026, 3, 20, 15))
    tick(reminders(), local(2026, 3, 20, 14), step=timedelta(minutes=5))
    assert [m["sent_at"][:16] for m in sent(aws.store, lead.lead_id, "reminder")] == [
        "2026-03-18T08:00", "2026-03-20T05:00"]  # fmt: skip


def test_a_reminder_that_falls_in_quiet_hours_waits_for_morning(aws, monkeypatch):
    # 2 h before a 10:30 visit is 08:30: the salon's quiet hours last until 09:00
    _, lead = _booked(aws, monkeypatch, local(2026, 3, 19, 10, 30))
    job = reminders()
    tick(job, local(2026, 3, 19, 8, 55), step=timedelta(minutes=5))
    assert len(sent(aws.store, lead.lead_id, "reminder")) == 1  # the day-before one, at 10:30
    tick(job, local(2026, 3, 19, 9, 5), step=timedelta(minutes=5))
    assert sent(aws.store, lead.lead_id, "reminder")[-1]["sent_at"][:16] == "2026-03-19T02:00"  # 09:00 local


def _answer(aws, lead, text):
    """The client's answer on Wednesday 16:00; the lead as it is after (closed or not)."""
    clock.freeze(local(2026, 3, 18, 16))
    return client_writes(aws.store, text, chat=CHAT, lead_id=lead.lead_id)


def test_client_says_yes_and_the_visit_is_confirmed(aws, monkeypatch):
    _, lead = _booked(aws, monkeypatch, local(2026, 3, 19, 15))
    after = _answer(aws, lead, "Да, буду")
    assert after.lead_id == lead.lead_id and after.status == "confirmed"
    assert sent(aws.store, lead.lead_id, "reply")[-1]["text"] == "Спасибо, ждём вас!"
    (note,) = sent(aws.store, lead.lead_id, "owner_note")
    assert note["to"] == f"staff:{lead.owner}" and "подтвердил визит" in note["text"]
    # A confirmed visit is still reminded 2 h before
    tick(reminders(), local(2026, 3, 19, 13), step=timedelta(minutes=5))
    assert sent(aws.store, lead.lead_id, "reminder")[-1]["id"].startswith(f"reminder:appt#{lead.lead_id}#2:")


def test_client_says_no_and_the_visit_is_cancelled_and_reminders_stop(aws, monkeypatch):
    _, lead = _booked(aws, monkeypatch, local(2026, 3, 19, 15))
    after = _answer(aws, lead, "Нет, отмена")
    assert after.status == "cancelled"
    assert "отменил визит" in sent(aws.store, lead.lead_id, "owner_note")[0]["text"]
    assert aws.store.staff.state([lead.owner])[lead.owner].open_leads == 0
    assert aws.store.contacts.get(lead.contact_id).open_lead_id is None  # her next message: a new lead
    tick(reminders(), local(2026, 3, 19, 14), step=timedelta(minutes=10))
    assert sent(aws.store, lead.lead_id, "reminder") == []


def test_client_asks_to_reschedule_and_the_owner_is_told_at_once(aws, monkeypatch):
    _, lead = _booked(aws, monkeypatch, local(2026, 3, 19, 15))
    after = _answer(aws, lead, "Можно перенести на другой день?")
    assert after.status == "booked"
    assert sent(aws.store, lead.lead_id, "reply")[-1]["text"] == wiring.business().messages.reschedule
    assert "просит перенести" in sent(aws.store, lead.lead_id, "owner_note")[0]["text"]


def test_nudges_at_t1_and_t3_then_nurture_at_t7(aws, monkeypatch):
    clock.freeze(local(2026, 3, 17, 10))
    crm = RecordingCrm()
    use_crm(monkeypatch, crm)
    lead = client_writes(aws.store, "Хочу на маникюр", chat=CHAT)
    lead = route(aws.store, lead.lead_id)
    owner = lead.owner
    job = reminders()

    tick(job, local(2026, 3, 24, 11), step=timedelta(minutes=5), times=2)
    nudges = sent(aws.store, lead.lead_id, "nudge")
    assert [m["sent_at"][:16] for m in nudges] == ["2026-03-18T03:00", "2026-03-20T03:00"]
    assert nudges[0]["text"] == ("Здравствуйте! Подобрать вам удобное время на маникюр? "
                                 "Напишите день и время — администратор подтвердит.")  # fmt: skip
    after = aws.store.leads.get(lead.lead_id)
    assert after.status == "lost" and "nurture" in after.tags
    assert ("status:lost", lead.lead_id) in crm.calls
    # Closed: the owner's slot is back and the contact's next message opens a new lead
    assert aws.store.staff.state([owner])[owner].open_leads == 0
    assert aws.store.contacts.get(lead.contact_id).open_lead_id is None
    assert aws.store.timers.get(f"nudge#{lead.lead_id}") is None


def test_nudges_stop_when_the_client_replies(aws):
    clock.freeze(local(2026, 3, 17, 10))
    lead = client_writes(aws.store, "Хочу на маникюр", chat=CHAT)
    job = reminders()
    tick(job, local(2026, 3, 18, 12), step=timedelta(minutes=5))
    assert len(sent(aws.store, lead.lead_id, "nudge")) == 1
    assert client_writes(aws.store, "Подумаю и напишу", chat=CHAT).lead_id == lead.lead_id
    tick(job, local(2026, 3, 26, 12), step=timedelta(minutes=30))
    assert len(sent(aws.store, lead.lead_id, "nudge")) == 1
    assert "nurture" not in aws.store.leads.get(lead.lead_id).tags


def test_nudges_stop_when_the_client_books(aws, monkeypatch):
    _, lead = _booked(aws, monkeypatch, local(2026, 3, 25, 15))
    tick(reminders(), local(2026, 3, 24, 12), step=timedelta(minutes=30))
    assert sent(aws.store, lead.lead_id, "nudge") == []
    assert aws.store.leads.get(lead.lead_id).status == "booked"


def test_a_nudge_due_at_night_waits_for_morning(aws):
    clock.freeze(local(2026, 3, 17, 22, 30))  # the client wrote late in the evening
    lead = client_writes(aws.store, "Хочу на маникюр", chat=CHAT)
    tick(reminders(), local(2026, 3, 19, 9, 30), step=timedelta(minutes=5))
    (nudge,) = sent(aws.store, lead.lead_id, "nudge")
    assert nudge["sent_at"][:16] == "2026-03-19T02:00"  # Thursday 09:00 local, not Wednesday 22:30


def test_no_show_gets_a_winback_after_the_configured_delay(aws, monkeypatch):
    aws.push_config(SALON.read_text(encoding="utf-8") + "\nreminders: {winback_after_days: 3}\n")
    _, lead = _booked(aws, monkeypatch, local(2026, 3, 19, 15))
    assert wiring.business().reminders.winback_after_days == 3
    aws.store.staff.connect_chat(lead.owner, "9001")
    clock.freeze(local(2026, 3, 19, 16))
    event = StaffEvent(event_id="ns1", chat_id="9001", user_id="9001", action=f"no_show:{lead.lead_id}",
                       received_at=clock.now())  # fmt: skip
    wiring.workspace(wiring.business()).handle(event)
    assert aws.store.leads.get(lead.lead_id).status == "no_show"
    job = reminders()
    tick(job, local(2026, 3, 22, 15, 55), step=timedelta(minutes=5))
    assert sent(aws.store, lead.lead_id, "winback") == []
    tick(job, local(2026, 3, 23, 12), step=timedelta(minutes=5), times=2)
    (winback,) = sent(aws.store, lead.lead_id, "winback")
    assert (winback["channel"], winback["to"], winback["sent_at"][:16]) == (
        "telegram",
        CHAT,
        "2026-03-22T09:00",
    )
    assert winback["text"] == "Жаль, что не получилось прийти. Давайте подберём другое время на маникюр?"
    assert len([m for m in outbox(aws.store, lead.lead_id) if m["kind"] == "winback"]) == 1


def _english_speaking_salon(monkeypatch) -> None:
    config = wiring.business().model_copy(deep=True)
    manicure = config.service("manicure")
    assert manicure is not None
    manicure.name_en, manicure.keywords = "manicure", [*manicure.keywords, "manicure"]
    use_business(monkeypatch, config)


def test_an_english_client_is_reminded_in_english(aws, monkeypatch):
    _english_speaking_salon(monkeypatch)
    _, lead = _booked(aws, monkeypatch, local(2026, 3, 19, 15), text="I would like a manicure please")
    assert (lead.language, lead.service) == ("en", "manicure")
    tick(reminders(), local(2026, 3, 18, 15, 5), step=timedelta(minutes=5), times=2)
    (day_before,) = sent(aws.store, lead.lead_id, "reminder")
    assert day_before["text"] == (
        "A reminder: you are booked for manicure tomorrow at 15:00. Please confirm: answer “yes” or “no”."
    )


def test_an_english_client_is_nudged_in_english(aws, monkeypatch):
    clock.freeze(local(2026, 3, 17, 10))
    use_crm(monkeypatch, RecordingCrm())
    _english_speaking_salon(monkeypatch)
    lead = client_writes(aws.store, "Hello! Can I book a manicure?", chat=CHAT)
    route(aws.store, lead.lead_id)
    tick(reminders(), local(2026, 3, 18, 11), step=timedelta(minutes=5), times=2)
    (nudge,) = sent(aws.store, lead.lead_id, "nudge")
    assert nudge["text"] == (
        "Hello! Shall we find a time that suits you for manicure? Write a day and time — an administrator "
        "will confirm."
    )
