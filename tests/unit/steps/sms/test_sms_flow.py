"""SMS in the flow: a missed call answered by SMS through SMSC, «СТОП» honoured for good, consent
for marketing, a timeout never doubles a text, and a failed SMS is not left at that."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from leadflow import clock, wiring
from leadflow.domain.models import Contact, InboundMessage, OutboundMessage
from leadflow_local.functions import invoke
from leadflow_local.stack import api_gateway_event, sqs_event
from tests.fakes.http import FakeServer
from tests.fakes.smsc_server import FakeSmsc
from tests.support.builders import schedule_booking

SATURDAY_11 = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)  # 11:00 in Krasnoyarsk
HOOK_SECRET = "sms-hook-secret-0123"
CALLER = "+79135550077"


@pytest.fixture
def smsc(aws, monkeypatch):
    fake = FakeSmsc()
    with FakeServer(fake.route) as server:
        for name, value in {
            "SMS_PROVIDER": "smsc", "SMS_LOGIN": fake.login, "SMS_API_KEY": fake.password,
            "SMS_API_BASE": server.url, "SMS_SENDER": "Salon", "SMS_WEBHOOK_SECRET": HOOK_SECRET,
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        wiring.reset()
        fake.server = server
        yield fake


def run_score(*messages: InboundMessage) -> None:
    records = [
        {"MessageId": m.message_id, "ReceiptHandle": "rh", "Body": m.model_dump_json()} for m in messages
    ]
    assert invoke("score", sqs_event(records, "ScoreQueue")) == {"batchItemFailures": []}


def missed_call(n: int = 1, phone: str = CALLER) -> InboundMessage:
    return InboundMessage(
        message_id=f"call:leadflow:c{n}:missed",
        channel="call",
        chat_id=phone,
        contact=Contact(phone=phone, phone_verified=True),  # the caller id, as the call webhook says
        received_at=clock.now(),
        call={"missed": True},
    )


def sms_from(n: int, text: str, phone: str = CALLER) -> InboundMessage:
    return InboundMessage(
        message_id=f"sms:smsc:{n}",
        channel="sms",
        chat_id=phone,
        contact=Contact(phone=phone, channel_user_id=phone),
        text=text,
        received_at=clock.now(),
    )


def outbound_items(aws) -> list[dict]:
    return [i for i in aws.store.conversation.table.scan()["Items"] if i.get("direction") == "out"]


def test_a_missed_call_is_answered_by_sms_with_segments_and_cost_recorded(aws, smsc):
    clock.freeze(SATURDAY_11)
    run_score(missed_call())

    (((phone, _), sent),) = smsc.messages.items()
    assert phone == CALLER.lstrip("+") and "пропустили ваш звонок" in sent.text and sent.sender == "Salon"
    (reply,) = outbound_items(aws)
    assert (reply["status"], reply["via"], reply["channel"]) == ("sent", "api", "sms")
    assert int(reply["segments"]) == sent.segments and float(reply["cost"]) == pytest.approx(sent.cost)


def test_stop_is_honoured_for_every_later_text(aws, smsc):
    clock.freeze(SATURDAY_11)
    run_score(missed_call(1))
    assert len(smsc.messages) == 1
    # Given the client answers «СТОП»
    run_score(sms_from(1, "СТОП"))
    assert len(smsc.messages) == 1  # no reply to a stop: that would be a text
    # When another missed call comes from the same number
    clock.advance(timedelta(days=20))
    run_score(missed_call(2))
    # Then nothing is texted, and the refusal is recorded with its reason
    assert len(smsc.messages) == 1
    refused = [i for i in outbound_items(aws) if i["status"] == "refused"]
    assert [i["error"] for i in refused] == ["opted out"]


def test_stop_is_honoured_when_the_number_comes_back_through_a_form(aws, smsc):
    clock.freeze(SATURDAY_11)
    # Given a number that answered «СТОП» by SMS
    run_score(sms_from(1, "СТОП"))
    # When the same number is typed into the site's form the next day (a claim: kept on the lead,
    # not merged into the SMS sender's contact)
    clock.advance(timedelta(days=1))
    run_score(
        InboundMessage(
            message_id="form:site:1",
            channel="form",
            chat_id=CALLER,
            contact=Contact(name="Ира", phone=CALLER),
            text="Хочу на маникюр завтра в 15:00",
            received_at=clock.now(),
        )
    )
    # Then the number is still never texted: the answer is refused, not sent
    assert smsc.messages == {}
    assert [(i["kind"], i["status"]) for i in outbound_items(aws)] == [("reply", "refused")]


def test_marketing_by_sms_needs_consent(aws, smsc):
    clock.freeze(SATURDAY_11)
    run_score(missed_call())
    lead_id = outbound_items(aws)[0]["lead_id"]
    nudge = OutboundMessage(
        id="nudge:x", channel="sms", to=CALLER, lead_id=lead_id, kind="winback", text="Вернитесь!"
    )

    messenger = wiring.messenger(wiring.business())
    assert messenger.send(nudge).outcome == "refused"
    lead = aws.store.leads.get(lead_id)
    aws.store.contacts.update(lead.contact_id, marketing_consent=True)
    again = OutboundMessage(
        id="nudge:y", channel="sms", to=CALLER, lead_id=lead_id, kind="winback", text="Вернитесь!"
    )
    assert messenger.send(again).outcome == "sent"
    assert len(smsc.messages) == 2


def test_a_timeout_is_checked_with_the_provider_not_resent(aws, smsc, monkeypatch):
    clock.freeze(SATURDAY_11)
    from leadflow.adapters.channels import sms_providers

    class ImpatientSmsc(sms_providers.SmscProvider):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, timeout=(1.0, 0.5), **kwargs)

    monkeypatch.setattr(sms_providers, "SmscProvider", ImpatientSmsc)
    wiring.reset()
    smsc.slow_s = 1.5  # the SMS is taken, the answer comes after the client's timeout
    asked = []
    original_confirm = sms_providers.SmscProvider.check_sent
    monkeypatch.setattr(
        ImpatientSmsc,
        "check_sent",
        lambda self, *a, **kw: asked.append(1) or original_confirm(self, *a, **kw),
    )

    run_score(missed_call())

    assert asked == [1]  # the outcome was checked with the provider…
    assert len(smsc.messages) == 1  # …which had it: no second text
    (reply,) = outbound_items(aws)
    assert reply["status"] == "sent" and reply["provider_message_id"]


def test_a_failed_sms_is_reported_to_the_owner(aws, smsc):
    clock.freeze(SATURDAY_11)
    run_score(missed_call())
    ready = [json.loads(m["Body"]) for m in aws.receive("RouteQueue")]
    invoke(
        "route",
        sqs_event(
            [{"MessageId": "r", "ReceiptHandle": "rh", "Body": json.dumps(r)} for r in ready], "RouteQueue"
        ),
    )
    (reply,) = [i for i in outbound_items(aws) if i["kind"] == "reply"]

    # SMSC calls back: status 20 = could not be delivered
    body = urlencode({"id": reply["provider_message_id"], "phone": CALLER.lstrip("+"), "status": "20", "err": "1",
                      "time": "1795631460", "ts": "1795631460"})  # fmt: skip
    event = api_gateway_event("POST", "/webhooks/sms", "secret=" + HOOK_SECRET,
                              {"content-type": "application/x-www-form-urlencoded"}, body.encode(), "127.0.0.1")  # fmt: skip
    assert invoke("ingest", event)["statusCode"] == 200
    reports = aws.receive("RouteQueue")
    assert invoke("route", sqs_event(reports, "RouteQueue")) == {"batchItemFailures": []}

    item = aws.store.conversation.table.get_item(Key={"lead_id": reply["lead_id"], "sk": reply["sk"]})["Item"]
    assert item["delivery"] == "failed"
    (note,) = [i for i in outbound_items(aws) if i["kind"] == "owner_note"]
    assert "не доставлено" in note["text"] and CALLER in note["text"]


def test_an_sms_reminder_is_one_part(aws, smsc):
    from leadflow.domain.sms import count_segments

    clock.freeze(SATURDAY_11)
    run_score(missed_call())
    lead_id = outbound_items(aws)[0]["lead_id"]
    lead = aws.store.leads.mutate(
        lead_id,
        lambda lead: lead.model_copy(
            update={
                "service": "haircut_women",
                "status": "booked",
                "appointment_at": SATURDAY_11 + timedelta(days=5),
            }
        ),
    )
    schedule_booking(lead)
    clock.freeze(SATURDAY_11 + timedelta(days=4))  # 24 h before
    wiring.remind_step().run(clock.now())

    reminder = next(m for m in smsc.messages.values() if "Напоминаем" in m.text)
    assert reminder.text == "Напоминаем: женская стрижка завтра в 11:00. Ответьте ДА или НЕТ"
    assert count_segments(reminder.text).segments == 1 == reminder.segments
