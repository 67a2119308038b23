"""Trust, through the real handlers: a form lead is never thrown away for a placeholder name (item 8),
and a phone typed in a message never gives its sender another client's booking (item 10)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadflow import clock, wiring
from leadflow.domain.models import LeadStatus
from tests.support.workspace import Workspace, start_workspace


@pytest.fixture
def ws(aws, monkeypatch) -> Workspace:
    return start_workspace(aws, monkeypatch, None)


def leads(ws: Workspace) -> list:
    items = ws.aws.store.leads.table.scan()["Items"]  # type: ignore[attr-defined]
    return sorted((ws.lead(i["lead_id"]) for i in items), key=lambda lead: lead.received_at)


@pytest.mark.parametrize("placeholder", ["Клиент", "Имя", "тест"])
def test_item_8_a_form_with_a_placeholder_name_and_a_phone_is_a_lead_with_an_owner(ws, placeholder):
    # Given a site form whose name field holds a placeholder, with a phone and a real request
    delivery = ws.hooks.tilda_form(
        {"name": placeholder, "phone": "+7 913 555-12-34", "comment": "маникюр завтра в 12"}
    )
    # When it goes through ingest, score and route
    assert ws.post(delivery) == 200
    ws.run()
    # Then it is a booking lead with an owner, no name, and the phone kept for the call-back
    (lead,) = leads(ws)
    assert lead.intent == "booking" and lead.status == LeadStatus.assigned and lead.owner
    assert lead.service == "manicure" and lead.contact.name is None
    assert lead.contact.phone == "+79135551234"


def test_item_8_a_test_submission_is_still_not_a_target(ws):
    assert (
        ws.post(ws.hooks.tilda_form({"name": "тест", "phone": "+7 913 555-12-34", "comment": "тест"})) == 200
    )
    ws.run()
    (lead,) = leads(ws)
    assert lead.intent == "not_target" and lead.owner is None


def test_item_10_a_phone_typed_by_a_stranger_cancels_nothing_of_another_client(ws):
    store = ws.aws.store  # type: ignore[attr-defined]
    # Given Ирина booked through WhatsApp from her own number (verified by WhatsApp)
    assert ws.post(ws.hooks.whatsapp_text("+79135550001", "Ирина", "Маникюр завтра в 12", clock.now())) == 200
    ws.run()
    (booked,) = leads(ws)
    result = store.leads.mutate(booked.lead_id, lambda lead: _book(lead, clock.now() + timedelta(days=1)))
    assert result is not None and result.status == LeadStatus.booked
    # When a stranger writes from Telegram «Отмена. Мой номер +7 913 555-00-01»
    clock.advance(timedelta(minutes=5))
    stranger = ws.hooks.telegram_text(
        90001, "Незнакомец", "Отмена записи. Мой номер +7 913 555-00-01", clock.now()
    )
    assert ws.post(stranger) == 200
    ws.run()
    # Then Ирина's booking stands, her contact is untouched, and the stranger has a lead of their own
    assert store.leads.get(booked.lead_id).status == LeadStatus.booked
    others = [lead for lead in leads(ws) if lead.lead_id != booked.lead_id]
    assert len(others) == 1
    stranger_lead = others[0]
    assert stranger_lead.contact_id != booked.contact_id
    # the typed number is kept for the call-back, and staff see it may be the same person
    assert stranger_lead.contact.phone == "+79135550001"
    assert stranger_lead.possible_match == booked.contact_id
    assert store.contacts.get(booked.contact_id).open_lead_id == booked.lead_id
    assert "возможно, это тот же человек" in wiring.route_step().cards.text(stranger_lead)


def test_item_10_a_shared_telegram_contact_of_ones_own_is_verified(ws):
    store = ws.aws.store  # type: ignore[attr-defined]
    assert (
        ws.post(ws.hooks.whatsapp_text("+79135550002", "Ольга", "Педикюр в пятницу в 15", clock.now())) == 200
    )
    ws.run()
    (first,) = leads(ws)
    store.leads.mutate(first.lead_id, lambda lead: _book(lead, clock.now() + timedelta(days=2)))
    # When the same person shares her own contact from Telegram and then answers «отмена»
    clock.advance(timedelta(minutes=5))
    assert ws.post(ws.hooks.telegram_contact(90002, "Ольга", "+79135550002", own=True, at=clock.now())) == 200
    ws.run()
    clock.advance(timedelta(minutes=1))
    assert ws.post(ws.hooks.telegram_text(90002, "Ольга", "отмена", clock.now())) == 200
    ws.run()
    # Then the verified number joins her contact: her own booking is cancelled by her own word
    assert store.leads.get(first.lead_id).status == LeadStatus.cancelled


def _book(lead, at):
    from leadflow.domain import lifecycle

    return lifecycle.book(lead, at, lead.owner, clock.now())
