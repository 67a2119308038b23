"""A reminder to a WhatsApp client whose 24-hour window closed is never silently lost:
the approved template, else SMS, else the owner is told (against the fake Graph API)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadflow import clock, wiring
from leadflow.domain.models import Lead, LeadStatus
from tests.fakes.http import FakeServer
from tests.fakes.meta_server import FakeGraphApi
from tests.fakes.smsru_server import FakeSmsRu
from tests.support.builders import (
    client_writes,
    local,
    outbox,
    reminders,
    route,
    schedule_booking,
    tick,
    use_business,
)

PHONE_DIGITS = "79161234567"


@pytest.fixture
def graph(aws, monkeypatch):
    with FakeGraphApi() as fake:
        monkeypatch.setenv("WHATSAPP_TOKEN", fake.token)
        monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "106540352242922")
        monkeypatch.setenv("META_GRAPH_BASE", fake.base_url)
        wiring.reset()
        yield fake


def _remind(aws, monkeypatch, *, template: str | None = None):
    """A WhatsApp client booked for Thursday 15:00, only the day-before reminder left to send."""
    clock.freeze(local(2026, 3, 17, 10))
    business = wiring.business().model_copy(deep=True)
    business.messages.whatsapp_template = template
    use_business(monkeypatch, business)
    lead = client_writes(aws.store, "Хочу на маникюр", chat=PHONE_DIGITS, channel="whatsapp",
                         phone="+" + PHONE_DIGITS, phone_verified=True)  # fmt: skip
    lead = route(aws.store, lead.lead_id)

    def book(current: Lead) -> Lead:
        current.status, current.appointment_at = LeadStatus.booked, local(2026, 3, 19, 15)
        return current

    schedule_booking(aws.store.leads.mutate(lead.lead_id, book))
    aws.store.timers.cancel(f"appt#{lead.lead_id}#2")  # the day-before reminder is enough here
    aws.store.timers.cancel(f"nudge#{lead.lead_id}")
    return lead


def _run():
    tick(reminders(), local(2026, 3, 18, 16), step=timedelta(minutes=5), times=2)


def _sent_kinds(aws, lead):
    return sorted((m["channel"], m["kind"], m["status"]) for m in outbox(aws.store, lead.lead_id)
                  if m["kind"] not in ("reply", "lead_card"))  # fmt: skip


def test_open_window_sends_the_text(aws, graph, monkeypatch):
    lead = _remind(aws, monkeypatch)
    _run()
    texts = [m for m in graph.sent if m.kind == "text" and "Напоминаем" in m.text]
    assert len(texts) == 1 and texts[0].to == PHONE_DIGITS
    assert _sent_kinds(aws, lead) == [("whatsapp", "reminder", "sent")]


def test_closed_window_sends_the_approved_template(aws, graph, monkeypatch):
    lead = _remind(aws, monkeypatch, template="appointment_reminder")
    graph.close_window(PHONE_DIGITS)
    _run()
    (template,) = [m for m in graph.sent if m.kind == "template"]
    assert template.to == PHONE_DIGITS
    sent_template = template.payload["template"]
    assert (sent_template["name"], sent_template["language"]["code"]) == ("appointment_reminder", "ru")
    assert "маникюр завтра в 15:00" in sent_template["components"][0]["parameters"][0]["text"]
    assert _sent_kinds(aws, lead) == [("whatsapp", "reminder", "failed"), ("whatsapp", "reminder", "sent")]


def test_closed_window_without_template_falls_back_to_sms(aws, graph, monkeypatch):
    smsru = FakeSmsRu()
    with FakeServer(smsru.route) as server:
        monkeypatch.setenv("SMS_PROVIDER", "smsru")
        monkeypatch.setenv("SMS_API_KEY", smsru.api_id)
        monkeypatch.setenv("SMS_API_BASE", server.url)
        wiring.reset()
        lead = _remind(aws, monkeypatch)
        graph.close_window(PHONE_DIGITS)
        _run()
    (sms,) = smsru.sent.values()
    assert sms.to == PHONE_DIGITS and sms.text.startswith("Напоминаем: вы записаны на маникюр")
    assert _sent_kinds(aws, lead) == [("sms", "reminder", "sent"), ("whatsapp", "reminder", "failed")]


def test_closed_window_with_no_fallback_tells_the_owner(aws, graph, monkeypatch):
    lead = _remind(aws, monkeypatch)
    graph.close_window(PHONE_DIGITS)
    _run()
    notes = [m for m in outbox(aws.store, lead.lead_id) if m["kind"] == "owner_note"]
    assert len(notes) == 1 and notes[0]["to"] == f"staff:{lead.owner}" and "WhatsApp" in notes[0]["text"]
    assert [m for m in graph.sent if m.kind != "text"] == []
    # The reminder is not retried forever: the timer is done
    assert aws.store.timers.get(f"appt#{lead.lead_id}#24") is None
