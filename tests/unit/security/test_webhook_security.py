"""Hostile input at the front door, through the ingest handler as API Gateway calls it:
unsigned or wrongly signed deliveries, replays, oversized bodies, injection strings and odd
unicode through ingest → score → route, and no phone number or secret in any log line."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from leadflow import clock, wiring
from leadflow.settings import reset_caches
from leadflow_local.functions import invoke
from leadflow_local.stack import api_gateway_event, sqs_event
from leadflow_local.webhooks import Delivery, Webhooks

SECRETS = {
    "TELEGRAM_WEBHOOK_SECRET": "tg-secret-0123456789", "META_APP_SECRET": "meta-secret-0123456789",
    "VK_SECRET": "vk-secret-0123456789", "FORM_SECRET": "form-secret-0123456789",
    "CALL_SECRET": "call-secret-0123456789", "SMS_API_KEY": "sms-secret-0123456789",
    "SMS_WEBHOOK_SECRET": "sms-hook-secret-0123456789",
}  # fmt: skip
WRONG = {name: "not-the-secret-999" for name in SECRETS}
NOW = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)  # Saturday 11:00 in Krasnoyarsk


@pytest.fixture
def signed(aws, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VK_CONFIRMATION_CODE", "vk-confirm")
    # SMS callbacks are read as SMS_PROVIDER's; nothing here sends for real (no tokens, no SMS login)
    monkeypatch.setenv("SMS_PROVIDER", "smsc")
    monkeypatch.setenv("OUTBOX_ONLY", "true")
    reset_caches()
    wiring.reset()
    clock.freeze(NOW)
    return aws


def _post(delivery: Delivery) -> dict:
    event = api_gateway_event("POST", f"/webhooks/{delivery.channel}", delivery.query, delivery.headers,
                              delivery.body, "198.51.100.7")  # fmt: skip
    return invoke("ingest", event)


def _one_of_each(hooks: Webhooks, text: str, phone: str = "+79135550123") -> list[Delivery]:
    return [
        hooks.telegram_text(424242, "Ирина", text, NOW),
        hooks.whatsapp_text(phone, "Ольга", text, NOW),
        hooks.instagram_text("17841400000000042", text, NOW),
        hooks.vk_message(190000042, text, NOW),
        hooks.tilda_form({"Name": "Светлана", "Phone": phone, "Комментарий": text}),
        hooks.missed_call(phone, "+73912000000", NOW),
        hooks.smsc_inbound(phone, text, NOW),
    ]


def _strip_auth(d: Delivery) -> Delivery:
    headers = {k: v for k, v in d.headers.items() if k.lower() not in
               ("x-telegram-bot-api-secret-token", "x-hub-signature-256", "x-call-secret")}  # fmt: skip
    body = d.body
    if d.channel == "vk":
        payload = json.loads(body)
        payload.pop("secret")
        body = json.dumps(payload).encode()
    query = re.sub(r"(^|&)secret=[^&]*", "", d.query)
    return Delivery(d.channel, body, headers, query)


def test_every_channel_refuses_a_delivery_without_its_signature(signed):
    for delivery in _one_of_each(Webhooks("http://x", SECRETS), "Хочу на маникюр"):
        assert _post(_strip_auth(delivery))["statusCode"] == 403, delivery.channel
    assert signed.receive("ScoreQueue") == []


def test_every_channel_refuses_a_delivery_signed_with_the_wrong_secret(signed):
    for delivery in _one_of_each(Webhooks("http://x", WRONG), "Хочу на маникюр"):
        assert _post(delivery)["statusCode"] == 403, delivery.channel
    assert signed.receive("ScoreQueue") == []


def test_a_replayed_delivery_is_a_no_op(signed):
    delivery = Webhooks("http://x", SECRETS).telegram_text(
        5151, "Ирина", "Хочу на маникюр", NOW, update_id=77
    )
    assert _post(delivery)["statusCode"] == 200
    invoke("score", sqs_event(signed.receive("ScoreQueue"), "ScoreQueue"))  # processed: the mark is final
    clock.freeze(NOW.replace(hour=9))  # five hours later someone replays the captured delivery
    assert _post(delivery)["statusCode"] == 200
    assert signed.receive("ScoreQueue") == []


def test_an_oversized_body_is_refused_with_413(signed):
    hooks = Webhooks("http://x", SECRETS)
    huge = hooks.telegram_text(5151, "Ирина", "а" * 1_200_000, NOW)
    assert _post(huge)["statusCode"] == 413
    assert signed.receive("ScoreQueue") == []


INJECTIONS = [
    "'; DROP TABLE leads; -- хочу на маникюр",
    '<script>alert("x")</script><img src=x onerror=alert(1)> стрижка',
    "Меня зовут {name}, {0} {lead.owner} {{service}} %s %d %(name)s ${jndi:ldap://x}",
    "маникюр\x00завтра\x00в 15:00",
    "\u202eманикюр\u202c завтра \u200bв\u200d 15:00 💅🏽 ма\u0301никюр \ufeff",
]


@pytest.mark.parametrize("text", INJECTIONS, ids=["sql", "html", "braces", "null", "unicode"])
def test_hostile_text_goes_through_the_whole_chain_verbatim(signed, text):
    hooks = Webhooks("http://x", SECRETS)
    for delivery in _one_of_each(hooks, text):
        assert _post(delivery)["statusCode"] == 200, delivery.channel
    batch = signed.receive("ScoreQueue")
    assert invoke("score", sqs_event(batch, "ScoreQueue")) == {"batchItemFailures": []}
    assert invoke("route", sqs_event(signed.receive("RouteQueue"), "RouteQueue")) == {"batchItemFailures": []}
    items = signed.store.conversation.table.scan()["Items"]
    inbound = [i["text"] for i in items if i.get("direction") == "in" and i.get("channel") != "call"]
    assert inbound and all(text in t for t in inbound), (
        inbound
    )  # stored verbatim (a form adds its field labels)
    replies = [i["text"] for i in items if i.get("kind") == "reply"]
    assert replies and all("{" not in r and "}" not in r for r in replies)  # templates not broken


def test_no_phone_number_or_secret_in_any_log_line(signed):
    import io
    import logging

    from leadflow.observability import logger

    # The Powertools JSON lines exactly as Lambda would ship them, into a buffer of our own.
    buffer = io.StringIO()
    capture = logging.StreamHandler(buffer)
    capture.setFormatter(logger.registered_formatter)
    logger.addHandler(capture)
    logger.setLevel("DEBUG")
    phone = "+79135550123"
    hooks = Webhooks("http://x", SECRETS)
    for delivery in [*_one_of_each(hooks, f"Хочу на маникюр, мой номер {phone}", phone),
                     *_one_of_each(Webhooks("http://x", WRONG), "x", phone)]:  # fmt: skip
        _post(delivery)
    invoke("score", sqs_event(signed.receive("ScoreQueue"), "ScoreQueue"))
    invoke("route", sqs_event(signed.receive("RouteQueue"), "RouteQueue"))
    logger.removeHandler(capture)
    lines = buffer.getvalue().splitlines()
    assert len(lines) > 10  # the logs were captured at all
    digits = re.compile(r"9135550123")
    for line in lines:
        assert not digits.search(line), line
        assert not any(secret in line for secret in [*SECRETS.values(), *WRONG.values()]), line
