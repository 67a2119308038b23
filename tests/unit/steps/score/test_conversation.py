"""The score step as a client lives it: one conversation over several messages, one reply per
message whatever the redeliveries, the lead handed to route when it is ready."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from leadflow import clock, wiring
from leadflow.domain.models import Contact, InboundMessage
from leadflow_local.functions import invoke
from leadflow_local.stack import sqs_event
from tests.fakes import openai_server as ai
from tests.support.builders import SATURDAY_11, message, only_lead, ready_messages, replies, score


def test_a_conversation_fills_the_lead_and_asks_only_for_what_is_missing(aws):
    clock.freeze(SATURDAY_11)
    # Given a client who names only the service
    score(aws, message(1, "Здравствуйте, хочу на маникюр"))
    first = replies(aws)[-1]["text"]
    assert first.startswith("Здравствуйте, Ира!")
    assert "маникюр" in first and "день и время" in first and "телефон" in first
    assert ready_messages(aws) == []  # not complete, not hot: it waits

    # When she adds the time, then the phone
    clock.advance(timedelta(minutes=1))
    score(aws, message(2, "завтра в 15:00", at=clock.now()))
    assert "завтра в 15:00" in replies(aws)[-1]["text"] and "телефон" in replies(aws)[-1]["text"]
    clock.advance(timedelta(minutes=1))
    score(aws, message(3, "+7 913 840-27-65", at=clock.now()))

    # Then it is one lead with everything, a hot booking, handed to route
    lead = only_lead(aws)
    assert (lead.service, str(lead.preferred_date), lead.preferred_time) == (
        "manicure",
        "2026-03-15",
        "15:00",
    )
    assert (lead.contact.phone, lead.intent, lead.temperature) == ("+79138402765", "booking", "hot")
    assert lead.first_reply_at == SATURDAY_11
    # (hot since «завтра»: handed on at once, and again when complete — route is idempotent)
    assert {m["lead_id"] for m in ready_messages(aws)} == {lead.lead_id}
    assert len(replies(aws)) == 3
    assert "Здравствуйте" not in replies(aws)[-1]["text"]  # greeted once


def test_a_redelivered_message_gets_no_second_reply_and_no_second_lead(aws):
    clock.freeze(SATURDAY_11)
    hello = message(1, "Можно на стрижку завтра в 12? 89138402765")
    score(aws, hello)
    score(aws, hello, receive_count=2)
    # and a copy ingest queued twice (it died between the enqueue and the mark): score keeps no
    # mark of its own — the lead remembers the messages folded into it
    score(aws, hello, receive_count=1)

    assert len(aws.store.leads.table.scan()["Items"]) == 1
    assert hello.message_id in only_lead(aws).message_ids
    assert len(replies(aws)) == 1
    assert (
        len(aws.store.conversation.history(only_lead(aws).lead_id)) == 2
    )  # the message once, the reply once


def test_spam_is_answered_plainly_and_never_owned(aws):
    clock.freeze(SATURDAY_11)
    score(aws, message(1, "Продвижение салонов в ТОП Яндекса, первые клиенты через неделю! Пишите"))
    lead = only_lead(aws)
    assert (lead.intent, lead.temperature) == ("not_target", "cold")
    assert replies(aws)[-1]["text"] == "Спасибо за сообщение."
    (ready,) = ready_messages(aws)
    assert ready["reason"] == "not_target"

    invoke(
        "route",
        sqs_event([{"MessageId": "r1", "ReceiptHandle": "rh", "Body": json.dumps(ready)}], "RouteQueue"),
    )
    lead = only_lead(aws)
    assert lead.status == "not_target" and lead.owner is None
    assert not any(m["kind"] == "lead_card" for m in aws.store.conversation.outbound(lead.lead_id))


def test_a_price_question_is_answered_from_the_catalog_and_owned_as_a_cold_lead(aws):
    clock.freeze(SATURDAY_11)
    score(aws, message(1, "Сколько стоит чистка лица?"))
    # the price as the catalog says it (no «от» it does not say), Russian style, and the offer to book
    assert (
        replies(aws)[-1]["text"]
        == "Здравствуйте, Ира! Чистка лица — 3\u202f000\u00a0₽, 1,5\u00a0часа. Записать вас?"
    )
    lead = only_lead(aws)
    assert (lead.intent, lead.temperature) == ("question", "cold")
    assert [m["reason"] for m in ready_messages(aws)] == ["complete"]


def test_a_voice_message_is_never_dropped(aws):
    clock.freeze(SATURDAY_11)
    score(aws, message(1, "", media=["voice"]))
    lead = only_lead(aws)
    assert lead.media == ["voice"]
    assert "Голосовые" in replies(aws)[-1]["text"]


def test_a_missed_call_is_hot_gets_an_sms_and_goes_to_route_at_once(aws):
    clock.freeze(SATURDAY_11)
    call = InboundMessage(
        message_id="call:leadflow:c1:missed",
        channel="call",
        chat_id="+79135550077",
        contact=Contact(phone="+79135550077"),
        received_at=SATURDAY_11,
        call={"missed": True},
    )
    score(aws, call)
    lead = only_lead(aws)
    assert lead.temperature == "hot" and "missed_call" in lead.tags
    (reply,) = replies(aws)
    assert (reply["channel"], reply["to"]) == ("sms", "+79135550077")
    assert [m["reason"] for m in ready_messages(aws)] == ["hot"]


def test_an_incomplete_warm_lead_waits_then_goes_to_route(aws):
    clock.freeze(SATURDAY_11)
    score(aws, message(1, "хочу записаться на педикюр на следующей неделе"))
    lead = only_lead(aws)
    assert ready_messages(aws) == []
    timer = aws.store.timers.get(f"route_wait#{lead.lead_id}")
    assert timer is not None and timer.due == SATURDAY_11 + timedelta(minutes=10)

    clock.advance(timedelta(minutes=11))
    invoke("escalate", {"detail-type": "Scheduled Event"})
    assert [m["lead_id"] for m in ready_messages(aws)] == [lead.lead_id]


def test_an_old_lead_does_not_swallow_a_new_request(aws):
    clock.freeze(SATURDAY_11)
    score(aws, message(1, "Хочу на маникюр завтра в 15:00, 89138402765"))
    clock.advance(timedelta(days=20))
    score(aws, message(2, "Здравствуйте, хочу на педикюр в субботу в 12:00", at=clock.now()))
    leads = sorted(
        (aws.store.leads.get(i["lead_id"]) for i in aws.store.leads.table.scan()["Items"]),
        key=lambda x: x.received_at,
    )
    assert [lead.service for lead in leads] == ["manicure", "pedicure"]
    assert leads[0].contact_id == leads[1].contact_id  # the same client, recognised


# --------------------------------------------------------------------------- the LLM engine


@pytest.fixture
def llm(aws, monkeypatch):
    fake = ai.FakeOpenAI(ai.labels())
    with fake.serve() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        wiring.reset()
        yield fake


def test_the_llm_understands_when_it_answers_within_budget(aws, llm):
    clock.freeze(SATURDAY_11)
    llm.reset(
        ai.labels(intent="booking", service="massage", preferred_date="2026-03-16", preferred_time="10:00")
    )
    score(aws, message(1, "а можно к Оле на спинку в понедельник с утра, часиков в десять"))
    lead = only_lead(aws)
    assert (lead.service, str(lead.preferred_date), lead.preferred_time) == ("massage", "2026-03-16", "10:00")
    assert lead.llm_tokens > 0
    assert "массаж" in replies(aws)[-1]["text"]


def test_a_slow_llm_does_not_delay_the_first_reply_and_refines_the_lead_later(aws, llm):
    clock.freeze(SATURDAY_11)
    budget = wiring.business().qualify.llm_budget_s
    # The "model" reads brows where the offline engine reads massage: we can tell who answered when.
    llm.reset(ai.slow(ai.labels(intent="booking", service="brows", preferred_date="2026-03-16"), budget + 1))
    started = datetime.now(UTC)
    score(aws, message(1, "массаж спины можно в понедельник?"))
    elapsed = (datetime.now(UTC) - started).total_seconds()

    (reply,) = replies(aws)
    assert "массаж" in reply["text"]  # the first reply went out with the offline answer
    assert only_lead(aws).service == "brows"  # the LLM's late answer refined the lead
    assert budget + 1 <= elapsed < budget + 4


@pytest.mark.parametrize(
    "failure",
    [ai.server_error(), ai.rate_limited(), ai.refused(), ai.truncated(ai.labels(service="massage"))],
    ids=["500", "429", "refusal", "truncated-json"],
)
def test_llm_failures_fall_back_to_the_offline_engine(aws, llm, failure):
    clock.freeze(SATURDAY_11)
    llm.reset(failure)
    score(aws, message(1, "Хочу на маникюр завтра в 15:00"))
    lead = only_lead(aws)
    assert (lead.service, lead.preferred_time) == ("manicure", "15:00")
    assert len(replies(aws)) == 1
