"""Item 22: personal data has an end — `leadflow forget <phone>` erases a person everywhere we keep
them (and asks the CRM), and what retention no longer allows is kept only as numbers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadflow import clock, wiring
from leadflow.adapters.crm.bitrix24 import Bitrix24Client
from leadflow.adapters.crm.bitrix24_crm import Bitrix24Crm
from leadflow.adapters.rate_limit import TokenBucket
from leadflow.domain import lifecycle
from leadflow.steps.privacy import Privacy
from leadflow_local.cli import main
from tests.fakes.bitrix24_server import Bitrix24Portal
from tests.support.builders import lead as a_lead
from tests.support.workspace import Workspace, start_workspace

IRINA = "+79135550001"


@pytest.fixture
def ws(aws, monkeypatch) -> Workspace:
    return start_workspace(aws, monkeypatch, None)


def everything_about(aws, phone: str) -> list[str]:
    """Every stored item that still holds the number or the name, by table."""
    found = []
    for name, table in (("leads", aws.store.leads.table), ("contacts", aws.store.contacts.table),
                        ("conversation", aws.store.conversation.table), ("inbox", aws.store.inbox.table)):  # fmt: skip
        for item in table.scan()["Items"]:
            text = str(item)
            if phone in text or phone.lstrip("+") in text or "Ирина" in text:
                found.append(f"{name}: {item.get('pk') or item.get('lead_id') or item.get('key')}")
    return found


def test_item_22_forget_erases_a_person_and_says_what_went(ws, aws):
    # Given Ирина wrote from WhatsApp (her number) and later typed it in a Telegram message
    assert ws.post(ws.hooks.whatsapp_text(IRINA, "Ирина", "Маникюр завтра в 12", clock.now())) == 200
    ws.run()
    clock.advance(timedelta(hours=1))
    assert (
        ws.post(ws.hooks.telegram_text(81234, "Ирина", f"это Ирина, мой номер {IRINA}, педикюр", clock.now()))
        == 200
    )
    ws.run()
    assert everything_about(aws, IRINA)
    # When the owner runs `leadflow forget` for her number
    report = Privacy(aws.store, wiring.crm(), aws.store.config.get()).forget("8 913 555-00-01")
    # Then nothing holds her number or name any more; the leads stay, as numbers
    assert everything_about(aws, IRINA) == []
    assert report.leads == 2 and report.contacts >= 1 and report.messages > 0 and report.raw_payloads == 2
    leads = [aws.store.leads.get(i["lead_id"]) for i in aws.store.leads.table.scan()["Items"]]
    assert all("anonymised" in lead.tags and lead.contact.phone is None for lead in leads)
    assert {lead.service for lead in leads} == {"manicure", "pedicure"}  # the figures survive
    assert report.crm_problems == []


def test_item_22_forget_asks_bitrix24_to_delete_its_records():
    with Bitrix24Portal(mode=1) as portal:
        import requests

        client = Bitrix24Client(portal.webhook_url, requests.Session(), TokenBucket(rate_per_s=50, burst=100))
        crm = Bitrix24Crm(client)
        lead_id = client.call("crm.lead.add", {"fields": {"TITLE": "Маникюр — Ирина", "NAME": "Ирина"}})
        from tests.support.builders import lead as make_lead

        ours = make_lead(crm_id=str(lead_id), crm_entity="lead")
        assert crm.forget(ours) is None
        assert portal.portal.leads == {}
        assert crm.forget(ours) is None  # already gone: nothing to report


def test_item_22_the_cli_forgets_and_refuses_what_is_not_a_number(ws, aws, monkeypatch, capsys):
    monkeypatch.setattr("leadflow_local.cli._connected", lambda args: {})
    assert main(["forget", "not-a-phone"]) == 2
    assert "not a phone number" in capsys.readouterr().err
    assert main(["forget", IRINA]) == 0
    assert "лидов обезличено: 0" in capsys.readouterr().out


def test_item_22_texts_expire_and_old_leads_keep_only_their_numbers(ws, aws):
    assert ws.post(ws.hooks.whatsapp_text(IRINA, "Ирина", "Маникюр завтра в 12", clock.now())) == 200
    ws.run()
    keep = aws.store.config.get().retention.personal_data_days
    texts = [i for i in aws.store.conversation.table.scan()["Items"] if i.get("direction") == "in"]
    assert texts and all(
        int(i["expires_at"]) > (clock.now() + timedelta(days=keep - 1)).timestamp() for i in texts
    )
    # A year and a day later the remind job runs: the lead keeps its numbers, the person is gone
    clock.advance(timedelta(days=keep + 1))
    remind = wiring.remind_step()
    remind.run(clock.now())
    remind.run(clock.now() + timedelta(days=1))
    (item,) = aws.store.leads.table.scan()["Items"]
    lead = aws.store.leads.get(item["lead_id"])
    assert "anonymised" in lead.tags and lead.contact.phone is None and lead.service == "manicure"
    assert aws.store.contacts.owner_of(f"phone#{IRINA}") is None


def test_item_22_a_text_past_its_retention_is_never_read_though_ttl_has_not_deleted_it(ws, aws):
    # TTL deletes late (YDB's Document API: "usually within two days"; the emulator: never), and an
    # expired item is still returned until then: reads check the expiry themselves.
    assert ws.post(ws.hooks.whatsapp_text(IRINA, "Ирина", "Маникюр завтра в 12", clock.now())) == 200
    ws.run()
    (item,) = aws.store.leads.table.scan()["Items"]
    lead_id = item["lead_id"]
    conversation = aws.store.conversation
    assert any(i["direction"] == "in" for i in conversation.history(lead_id))
    assert conversation.outbound(lead_id)
    keep = aws.store.config.get().retention.personal_data_days

    clock.advance(timedelta(days=keep, hours=1))

    stored = [i for i in conversation.table.scan()["Items"] if i["lead_id"] == lead_id]
    assert any(i.get("direction") == "in" for i in stored)  # still in the table ...
    assert not any(i["direction"] == "in" for i in conversation.history(lead_id))  # ... never read
    assert not conversation.outbound(lead_id)
    assert conversation.delete_lead(lead_id) == len(stored)  # and erased with the rest


def test_item_22_a_question_waiting_for_staff_goes_with_the_person():
    # the assistant keeps the words of a question it could not answer for the card: they are hers
    waiting = a_lead(question="мой номер 89135550001, с собакой можно?")
    anonymised = lifecycle.anonymised(waiting)
    assert anonymised is not None and anonymised.question is None
