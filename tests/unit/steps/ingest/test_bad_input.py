"""What a client can get wrong: a clear 4xx, nothing stored, nothing queued, never a 5xx."""

from __future__ import annotations

import json

import pytest

from leadflow.adapters.channels.meta import sign_meta_body
from leadflow.settings import reset_caches
from leadflow.steps.ingest import ITEM_BUDGET
from leadflow_local.stack import api_gateway_event
from tests.support.webhooks import (
    CHANNEL_SECRET,
    EVENTS,
    SECRETS,
    SOURCE_IP,
    changed,
    delivery,
    ingest,
    platform_headers,
    post,
)

PHONE = "+79161234567"
TEXT = "Запишите меня на стрижку в пятницу"
# One message-making sample per channel (and per call/sms provider).
SIGNED = {
    "telegram": EVENTS / "telegram" / "text_message.json",
    "whatsapp": EVENTS / "whatsapp" / "text.json",
    "instagram": EVENTS / "instagram" / "text.json",
    "vk": EVENTS / "vk" / "message_new.json",
    "form": EVENTS / "form" / "site_json.json",
    "call": EVENTS / "call" / "leadflow_missed.json",
    "zadarma": EVENTS / "call" / "zadarma_notify_end_missed.json",
    "mango": EVENTS / "call" / "mango_summary_missed.json",
    "smsru": EVENTS / "sms" / "status_smsru.json",
    "smsc": EVENTS / "sms" / "inbound_da_smsc.json",
    "aws_sms": EVENTS / "sms" / "inbound_da_aws.json",
    "bitrix24": EVENTS / "bitrix24" / "lead_add.json",
}


def _nothing_taken(env) -> None:
    assert env.receive("ScoreQueue") == [] and env.receive("RouteQueue") == []
    assert env.store.inbox.table.scan()["Items"] == []


def _forged(name: str) -> dict:
    """The sample with its proof of origin wrong in the way that channel carries it."""
    event = delivery(SIGNED[name])
    if name == "telegram":
        return changed(event, headers={"x-telegram-bot-api-secret-token": "guessed"})
    if name in ("whatsapp", "instagram"):
        return changed(
            event,
            headers={"x-hub-signature-256": sign_meta_body(b"another body", SECRETS["META_APP_SECRET"])},
        )
    if name == "vk":
        return changed(event, body=json.dumps({**json.loads(event["body"]), "secret": "guessed"}).encode())
    if name in ("form", "call"):
        return changed(event, headers={"x-form-secret": "guessed", "x-call-secret": "guessed"})
    if name == "zadarma":
        return changed(event, headers={"signature": "Z3Vlc3NlZA=="})
    if name == "mango":
        return changed(event, body=event["body"].replace("sign=d6", "sign=e6").encode())
    if name == "smsru":
        return changed(
            event, body=event["body"].replace("%0A103%0A", "%0A104%0A").encode()
        )  # hash no longer fits
    if name in ("smsc", "aws_sms"):
        return changed(event, query={"secret": "guessed"})
    return changed(event, body=event["body"].replace("dev-b24-app-token", "guessed").encode())


@pytest.mark.parametrize("name", SIGNED)
def test_a_forged_delivery_is_refused_and_nothing_is_kept(env, logs, configure_for, name):
    configure_for(SIGNED[name])
    # When a sample comes with a wrong secret or signature
    answer = ingest(_forged(name))
    # Then it is refused without saying why, and nothing is stored or queued
    assert (answer["status"], answer["body"]) == (403, "forbidden")
    _nothing_taken(env)
    # while the genuine delivery is taken: the refusal was about the proof alone
    assert ingest(delivery(SIGNED[name]))["status"] == 200
    logs.watch(PHONE)


@pytest.mark.parametrize("channel", ["whatsapp", "instagram"])
def test_a_meta_post_without_or_with_a_malformed_signature_is_403_like_every_refusal(env, logs, channel):
    event = delivery(SIGNED[channel])
    assert ingest(changed(event, headers={"x-hub-signature-256": None}))["status"] == 403
    assert ingest(changed(event, headers={"x-hub-signature-256": "sha1=abc"}))["status"] == 403
    _nothing_taken(env)


@pytest.mark.parametrize("name", SIGNED)
def test_a_channel_whose_secret_is_not_set_refuses_everything(env, logs, monkeypatch, configure_for, name):
    configure_for(SIGNED[name])
    # Given the channel's secret is not configured
    channel = SIGNED[name].parent.name
    monkeypatch.delenv(CHANNEL_SECRET[channel])
    reset_caches()
    # When a correctly signed delivery arrives, it is refused: fail closed
    answer = ingest(delivery(SIGNED[name]))
    assert (answer["status"], answer["body"]) == (403, "forbidden")
    _nothing_taken(env)


def test_meta_verification_fails_closed_and_on_a_wrong_token(env, logs, monkeypatch):
    verify = delivery(EVENTS / "ingest" / "whatsapp_verify.json")
    assert ingest(changed(verify, query={"hub.verify_token": "guessed"}))["status"] == 403
    monkeypatch.delenv("META_VERIFY_TOKEN")
    reset_caches()
    assert ingest(verify)["status"] == 403


def test_vk_confirmation_needs_the_secret_too(env, logs):
    body = json.dumps({"type": "confirmation", "group_id": 1, "secret": "guessed"}).encode()
    assert ingest(post("vk", body))["status"] == 403


def test_sms_without_a_provider_refuses(env, logs):
    event = changed(delivery(SIGNED["smsc"]), query={"provider": None})
    assert ingest(event)["status"] == 403
    _nothing_taken(env)


MALFORMED = [b'{"update_id": 1, "message": {', b"[1, 2", b"\xff\xfe\x00", b'"just a string"', b"[]"]


@pytest.mark.parametrize("body", MALFORMED, ids=["truncated", "open-array", "not-utf8", "string", "array"])
@pytest.mark.parametrize("channel", ["telegram", "whatsapp", "instagram", "vk", "form", "call"])
def test_malformed_json_is_400(env, logs, channel, body):
    # Given a properly authenticated request whose body is not a JSON object
    headers = {
        **platform_headers(channel, body),
        "x-form-secret": SECRETS["FORM_SECRET"],
        "x-call-secret": SECRETS["CALL_SECRET"],
    }
    # When it reaches ingest, it is 400 and nothing is kept
    assert ingest(post(channel, body, headers))["status"] == 400
    _nothing_taken(env)


def test_deeply_nested_json_is_400_not_a_crash(env, logs):
    # Given a JSON body nested deeper than the parser's recursion limit
    body = b"[" * 100_000 + b"]" * 100_000
    for channel in ("telegram", "whatsapp", "vk"):
        assert ingest(post(channel, body, platform_headers(channel, body)))["status"] == 400
    form = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    assert (
        ingest(
            post("form", form, {"x-form-secret": SECRETS["FORM_SECRET"], "content-type": "application/json"})
        )["status"]
        == 400
    )


def test_a_timestamp_out_of_range_is_400_not_a_crash(env, logs):
    update = json.loads((EVENTS / "telegram" / "text_message.json").read_bytes())
    update["message"]["date"] = 10**20
    body = json.dumps(update).encode()
    assert ingest(post("telegram", body, platform_headers("telegram", body)))["status"] == 400
    _nothing_taken(env)


def test_a_body_over_the_default_limit_is_413(env, logs):
    # Given a signed WhatsApp body just over 1 MB
    payload = json.loads((EVENTS / "whatsapp" / "text.json").read_bytes())
    payload["padding"] = "x" * 1_000_001
    body = json.dumps(payload).encode()
    # When it is posted, it is refused as too large before anything is parsed or kept
    assert ingest(post("whatsapp", body, platform_headers("whatsapp", body)))["status"] == 413
    _nothing_taken(env)


def test_the_body_limit_follows_max_body_bytes(env, logs, monkeypatch):
    monkeypatch.setenv("MAX_BODY_BYTES", "2000")
    reset_caches()
    event = delivery(EVENTS / "form" / "tilda_urlencoded.json")
    assert len(event["body"].encode()) < 2000 and ingest(event)["status"] == 200
    big = changed(event, body=event["body"].encode() + b"&Comment=" + b"a" * 2000)
    assert ingest(big)["status"] == 413


def test_an_unknown_channel_is_404(env, logs):
    assert ingest(post("myspace", b"{}"))["status"] == 404
    assert ingest(post("Telegram", b"{}"))["status"] == 404
    assert ingest({**post("telegram", b"{}"), "pathParameters": None})["status"] == 404  # not our route
    _nothing_taken(env)


def test_a_payload_type_we_do_not_use_is_200_with_a_note(env, logs):
    # Given a Telegram update that is not a message (the bot was added to a chat)
    answer = ingest(delivery(EVENTS / "telegram" / "my_chat_member.json"))
    # Then Telegram gets 200 (or it would retry for ever), nothing is queued, and the log says why
    assert (answer["status"], answer["body"]) == (200, "ok")
    _nothing_taken(env)
    assert '"note":"update type not handled: ignored"' in logs.text


def test_a_form_field_too_large_for_the_queue_is_413(env, logs):
    # Given a form post under the body limit whose comment alone exceeds what SQS carries (256 KiB)
    body = json.dumps({"name": "Анна", "phone": PHONE, "comment": "я" * 200_000}).encode()
    event = post("form", body, {"x-form-secret": SECRETS["FORM_SECRET"], "content-type": "application/json"})
    # Then it is refused as too large rather than failing in SendMessage with a 500
    assert ingest(event)["status"] == 413
    _nothing_taken(env)
    logs.watch(PHONE)


def test_a_large_accepted_delivery_keeps_its_item_under_dynamodbs_limit(env, logs):
    # Given a form post whose message fits the queue but message + raw body would not fit one item
    body = json.dumps({"name": "Анна", "phone": PHONE, "comment": "я" * 120_000}).encode()
    assert len(body) > 400_000 - 240_000
    event = post("form", body, {"x-form-secret": SECRETS["FORM_SECRET"], "content-type": "application/json"})
    assert ingest(event)["status"] == 200
    (item,) = env.store.inbox.table.scan()["Items"]
    # Then the raw copy is cut so the item stays a valid DynamoDB item (moto does not enforce 400 KB)
    assert len(item["raw"].encode()) + len(item["message"].encode()) <= ITEM_BUDGET
    assert body.decode().startswith(item["raw"])
    assert len(env.receive("ScoreQueue")) == 1
    logs.watch(PHONE)


def test_mango_events_under_a_plain_url_reach_the_mango_adapter(env, logs):
    # Mango appends /events/summary, /events/call … to the configured https://…/webhooks/call.
    sample = delivery(EVENTS / "call" / "mango_summary_missed.json")
    event = api_gateway_event("POST", "/webhooks/call/events/summary", "", sample["headers"],
                              sample["body"].encode(), SOURCE_IP)  # fmt: skip
    assert ingest(event)["status"] == 200
    (queued,) = env.receive("ScoreQueue")
    assert '"missed":true' in queued["Body"].replace(" ", "")
    assert ingest(sample)["status"] == 200  # the same summary through ?provider=mango is a duplicate
    assert env.receive("ScoreQueue") == []
