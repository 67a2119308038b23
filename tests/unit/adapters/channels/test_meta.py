"""WhatsApp Cloud API and Instagram Messaging: handshake, signatures, every sample event, and the
senders against a fake Graph API on a real socket."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.adapters.channels import instagram, meta, whatsapp
from leadflow.adapters.channels.base import (
    SendError,
    UnknownOutcome,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from leadflow.adapters.channels.instagram import InstagramSender
from leadflow.adapters.channels.meta import OutsideWindow, graph_send_error
from leadflow.adapters.channels.toolkit import split_text, utf8_len
from leadflow.adapters.channels.whatsapp import WhatsAppSender
from leadflow.domain.models import OutboundMessage
from tests.fakes.meta_server import FakeGraphApi

EVENTS = Path(__file__).resolve().parents[4] / "events"
APP_SECRET = "3f1e9c0b7a5d4e2f8c6b1a0d9e7f5c3b"
VERIFY_TOKEN = "leadflow-verify-7Qx2"
TOKEN = "EAAGm0PX4ZCpsBA-test-token-ZDZD"
PHONE_NUMBER_ID = "106540352242922"


def event_bytes(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def signed(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(channel: str, body: bytes, signature: str | None = "sign") -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if signature == "sign":
        signature = signed(body)
    if signature is not None:
        headers["x-hub-signature-256"] = signature
    return WebhookRequest(method="POST", channel=channel, headers=headers, query={}, body=body)


def get(channel: str, query: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method="GET", channel=channel, headers={}, query=query, body=b"")


def deliver(module: ModuleType, name: str) -> WebhookResult:
    channel = name.split("/")[0]
    result: WebhookResult = module.handle_webhook(post(channel, event_bytes(name)))
    assert result.status == 200
    return result


@pytest.fixture
def meta_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("META_VERIFY_TOKEN", VERIFY_TOKEN)


CHANNELS = [
    pytest.param(whatsapp, "whatsapp", id="whatsapp"),
    pytest.param(instagram, "instagram", id="instagram"),
]


# --------------------------------------------------------------------------- GET handshake


@pytest.mark.usefixtures("meta_secrets")
@pytest.mark.parametrize(("module", "channel"), CHANNELS)
def test_subscription_handshake_echoes_the_challenge(module: ModuleType, channel: str) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    result = module.handle_webhook(get(channel, query))
    assert (result.status, result.body) == (200, "1158201444")
    assert result.content_type.startswith("text/plain")
    assert result.messages == []


@pytest.mark.usefixtures("meta_secrets")
@pytest.mark.parametrize(("module", "channel"), CHANNELS)
@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "leadflow-verify-7Qx3", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
    ],
)
def test_subscription_handshake_with_a_wrong_token_or_mode_is_403(
    module: ModuleType, channel: str, query: dict[str, str]
) -> None:
    with pytest.raises(WebhookError) as refused:
        module.handle_webhook(get(channel, query))
    assert refused.value.status == 403


@pytest.mark.parametrize(("module", "channel"), CHANNELS)
def test_subscription_handshake_fails_closed_without_a_verify_token(
    module: ModuleType, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("META_APP_SECRET", APP_SECRET)
    for given_token in ("", "None", "null"):
        with pytest.raises(WebhookError) as refused:
            module.handle_webhook(
                get(channel, {"hub.mode": "subscribe", "hub.verify_token": given_token, "hub.challenge": "1"})
            )
        assert refused.value.status == 403


# --------------------------------------------------------------------------- signatures


@pytest.mark.usefixtures("meta_secrets")
@pytest.mark.parametrize(("module", "channel"), CHANNELS)
def test_a_correctly_signed_delivery_is_accepted(module: ModuleType, channel: str) -> None:
    body = event_bytes(f"{channel}/text.json")
    result = module.handle_webhook(post(channel, body))
    assert len(result.messages) == 1


@pytest.mark.usefixtures("meta_secrets")
@pytest.mark.parametrize(("module", "channel"), CHANNELS)
def test_a_body_reserialised_by_a_proxy_no_longer_verifies(module: ModuleType, channel: str) -> None:
    # Given Meta's original bytes and their valid signature
    original = event_bytes(f"{channel}/text.json")
    signature = signed(original)
    # When a proxy re-serialises the same JSON (same data, different bytes)
    for reserialised in (
        json.dumps(json.loads(original)).encode(),
        json.dumps(json.loads(original), ensure_ascii=False, separators=(",", ":")).encode(),
    ):
        assert json.loads(reserialised) == json.loads(original) and reserialised != original
        # Then the signature no longer matches
        with pytest.raises(WebhookError) as refused:
            module.handle_webhook(post(channel, reserialised, signature))
        assert refused.value.status == 403


@pytest.mark.usefixtures("meta_secrets")
@pytest.mark.parametrize(("module", "channel"), CHANNELS)
@pytest.mark.parametrize(
    ("signature", "status"),
    [
        # One status for every refusal, as the other channels answer (issue 15, bug 10).
        (None, 403),
        ("", 403),
        ("sha1=" + "a" * 40, 403),
        ("sha256=nothex", 403),
        ("sha256=" + "0" * 64, 403),
        ("other-secret", 403),
        ("tampered", 403),
    ],
)
def test_missing_or_wrong_signature_is_refused(
    module: ModuleType, channel: str, signature: str | None, status: int
) -> None:
    body = event_bytes(f"{channel}/text.json")
    if signature == "other-secret":
        signature = signed(body, "another-apps-secret")
    elif signature == "tampered":
        signature = signed(body)
        tampered = body.replace(b"?", b"!", 1)
        assert tampered != body
        body = tampered
    with pytest.raises(WebhookError) as refused:
        module.handle_webhook(post(channel, body, signature))
    assert refused.value.status == status


@pytest.mark.parametrize(("module", "channel"), CHANNELS)
def test_unset_app_secret_refuses_every_delivery(
    module: ModuleType, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("META_VERIFY_TOKEN", VERIFY_TOKEN)
    body = event_bytes(f"{channel}/text.json")
    for signature in (signed(body, ""), signed(body), None):
        with pytest.raises(WebhookError) as refused:
            module.handle_webhook(post(channel, body, signature))
        assert refused.value.status == 403


@pytest.mark.usefixtures("meta_secrets")
@pytest.mark.parametrize(("module", "channel"), CHANNELS)
def test_signature_is_checked_before_the_body_is_parsed(module: ModuleType, channel: str) -> None:
    with pytest.raises(WebhookError) as unsigned:
        module.handle_webhook(post(channel, b"{not json", signed(b"something else")))
    assert unsigned.value.status == 403
    with pytest.raises(WebhookError) as malformed:
        module.handle_webhook(post(channel, b"{not json"))
    assert malformed.value.status == 400


@pytest.mark.usefixtures("meta_secrets")
@pytest.mark.parametrize(("module", "channel"), CHANNELS)
@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'"x"',
        b"\xff\xfe",
        b'{"object": "OBJECT", "entry": "soon"}',
        b'{"object": "OBJECT"}',
        b'{"object": "OBJECT", "entry": [{"changes": [{"value": {"messages": [{"id": "m"}]}}], '
        b'"messaging": [{"sender": {}}]}]}',
    ],
)
def test_malformed_signed_bodies_are_400(module: ModuleType, channel: str, body: bytes) -> None:
    body = body.replace(b"OBJECT", module.OBJECT.encode())
    with pytest.raises(WebhookError) as refused:
        module.handle_webhook(post(channel, body))
    assert refused.value.status == 400


@pytest.mark.usefixtures("meta_secrets")
def test_a_delivery_for_another_product_is_acknowledged_without_leads() -> None:
    body = event_bytes("instagram/text.json")
    result = whatsapp.handle_webhook(post("whatsapp", body))
    assert result.status == 200 and result.messages == [] and "unexpected object" in (result.note or "")


@pytest.mark.usefixtures("meta_secrets")
def test_other_methods_are_refused() -> None:
    request = WebhookRequest(method="PUT", channel="whatsapp", headers={}, query={}, body=b"")
    with pytest.raises(WebhookError) as refused:
        whatsapp.handle_webhook(request)
    assert refused.value.status == 405


# --------------------------------------------------------------------------- WhatsApp payloads


@pytest.mark.usefixtures("meta_secrets")
def test_whatsapp_text_message_becomes_one_lead() -> None:
    result = deliver(whatsapp, "whatsapp/text.json")
    (message,) = result.messages
    payload = json.loads(event_bytes("whatsapp/text.json"))
    wamid = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert message.message_id == f"whatsapp:{wamid}"
    assert message.channel == "whatsapp"
    assert message.chat_id == "79991234501"
    assert message.contact.name == "Анна Смирнова"
    assert message.contact.phone == "+79991234501"
    assert message.contact.channel_user_id == "RU.1375802719475431"
    assert message.text.startswith("Здравствуйте! Хочу записаться на маникюр")
    assert message.media == []
    assert message.received_at == datetime(2026, 11, 20, 7, 15, tzinfo=UTC)
    assert message.business_connection_id == PHONE_NUMBER_ID
    assert message.source is None and message.utm.is_empty()
    assert result.note is None


@pytest.mark.usefixtures("meta_secrets")
def test_whatsapp_several_entries_and_messages_become_one_lead_each() -> None:
    result = deliver(whatsapp, "whatsapp/several_messages.json")
    assert [m.chat_id for m in result.messages] == ["79991234501", "79991234502", "79991234503"]
    assert [m.contact.name for m in result.messages] == ["Анна Смирнова", "Игорь", "Мария"]
    assert len({m.message_id for m in result.messages}) == 3
    assert result.messages[1].text == "Можно записаться на замену масла завтра утром?"
    # an interactive button reply reads as the button's title
    assert result.messages[2].text == "Записаться на завтра"


@pytest.mark.usefixtures("meta_secrets")
def test_whatsapp_username_only_user_is_reached_by_user_id_without_a_phone() -> None:
    (message,) = deliver(whatsapp, "whatsapp/username_only.json").messages
    assert message.contact.phone is None
    assert message.contact.channel_user_id == "RU.8812047719350268"
    assert message.chat_id == "RU.8812047719350268"
    assert message.contact.name == "Ксения"
    assert "брови" in message.text


@pytest.mark.usefixtures("meta_secrets")
@pytest.mark.parametrize(
    ("name", "media", "text"),
    [
        ("voice.json", ["voice"], ""),
        ("image_caption.json", ["photo"], "Хочу такой же дизайн ногтей, сколько будет стоить?"),
        ("location.json", ["location"], ""),
    ],
)
def test_whatsapp_media_messages(name: str, media: list[str], text: str) -> None:
    (message,) = deliver(whatsapp, f"whatsapp/{name}").messages
    assert message.media == media
    assert message.text == text


@pytest.mark.usefixtures("meta_secrets")
@pytest.mark.parametrize(
    ("name", "note"), [("status_update.json", "status update: 2"), ("reaction.json", "reaction: 1")]
)
def test_whatsapp_statuses_and_reactions_are_not_leads(name: str, note: str) -> None:
    result = deliver(whatsapp, f"whatsapp/{name}")
    assert result.messages == []
    assert result.note == note
    assert result.body == "ok"


@pytest.mark.usefixtures("meta_secrets")
def test_whatsapp_click_to_whatsapp_ad_sets_source_and_utm() -> None:
    (message,) = deliver(whatsapp, "whatsapp/referral_ad.json").messages
    assert message.source == "ad"
    assert message.page_url == "https://fb.me/3Zk8xQp1L"
    assert message.utm.source == "facebook"
    assert message.utm.medium == "paid"
    assert message.utm.campaign == "Чистка лица −20% в ноябре"
    assert message.utm.content == "120210487712340567"
    assert message.utm.term is not None and message.utm.term.startswith("ARAkLkA8rmlF")


@pytest.mark.usefixtures("meta_secrets")
def test_whatsapp_failed_delivery_status_names_its_error_code() -> None:
    status = {
        "id": "wamid.Y1",
        "status": "failed",
        "timestamp": "1795167600",
        "recipient_id": "79991234501",
        "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message"}],
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"phone_number_id": PHONE_NUMBER_ID},
        "statuses": [status],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"changes": [{"value": value, "field": "messages"}]}],
    }
    result = whatsapp.handle_webhook(post("whatsapp", json.dumps(payload).encode()))
    assert result.messages == [] and result.note == "failed delivery (131047): 1"


def _wa_payload(message: dict[str, Any], contacts: list[dict[str, Any]] | None = None) -> bytes:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "74951234567", "phone_number_id": PHONE_NUMBER_ID},
        "messages": [message],
    }
    if contacts is not None:
        value["contacts"] = contacts
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"value": value, "field": "messages"}]}],
    }
    return json.dumps(payload, ensure_ascii=False).encode()


@pytest.mark.usefixtures("meta_secrets")
@pytest.mark.parametrize(
    ("fields", "text", "media"),
    [
        ({"type": "button", "button": {"text": "Подтверждаю", "payload": "confirm"}}, "Подтверждаю", []),
        (
            {
                "type": "interactive",
                "interactive": {"type": "list_reply", "list_reply": {"id": "r1", "title": "Стрижка"}},
            },
            "Стрижка",
            [],
        ),
        ({"type": "audio", "audio": {"id": "1", "mime_type": "audio/mpeg", "voice": False}}, "", ["audio"]),
        ({"type": "audio", "audio": {"id": "1", "mime_type": "audio/ogg; codecs=opus"}}, "", ["voice"]),
        ({"type": "video", "video": {"id": "1", "caption": "Вот так стучит"}}, "Вот так стучит", ["video"]),
        ({"type": "document", "document": {"id": "1", "filename": "смета.pdf"}}, "", ["document"]),
        ({"type": "sticker", "sticker": {"id": "1", "mime_type": "image/webp"}}, "", ["sticker"]),
        ({"type": "unsupported", "errors": [{"code": 131051}]}, "", ["unsupported"]),
        ({"type": "brand_new_type", "brand_new_type": {}}, "", ["unsupported"]),
    ],
)
def test_whatsapp_message_kinds(fields: dict[str, Any], text: str, media: list[str]) -> None:
    body = _wa_payload({"from": "79991234509", "id": "wamid.X1", "timestamp": "1795167600", **fields})
    (message,) = whatsapp.handle_webhook(post("whatsapp", body)).messages
    assert (message.text, message.media) == (text, media)
    assert message.chat_id == "79991234509" and message.contact.phone == "+79991234509"
    assert message.contact.channel_user_id == "79991234509"  # no BSUID in an older payload


@pytest.mark.usefixtures("meta_secrets")
def test_whatsapp_message_naming_no_sender_is_400() -> None:
    body = _wa_payload({"id": "wamid.X2", "timestamp": "1795167600", "type": "text", "text": {"body": "?"}})
    with pytest.raises(WebhookError) as refused:
        whatsapp.handle_webhook(post("whatsapp", body))
    assert refused.value.status == 400


@pytest.mark.usefixtures("meta_secrets")
def test_whatsapp_message_without_timestamp_is_400_and_says_where() -> None:
    body = _wa_payload({"from": "79991234509", "id": "wamid.X3", "type": "text", "text": {"body": "?"}})
    with pytest.raises(WebhookError) as refused:
        whatsapp.handle_webhook(post("whatsapp", body))
    assert refused.value.status == 400 and "timestamp" in refused.value.reason
    assert "79991234509" not in refused.value.reason


# --------------------------------------------------------------------------- Instagram payloads


@pytest.mark.usefixtures("meta_secrets")
def test_instagram_text_message_becomes_one_lead() -> None:
    (message,) = deliver(instagram, "instagram/text.json").messages
    mid = json.loads(event_bytes("instagram/text.json"))["entry"][0]["messaging"][0]["message"]["mid"]
    assert message.message_id == f"instagram:{mid}"
    assert message.channel == "instagram"
    assert message.chat_id == "6543210987654321"
    assert message.contact.channel_user_id == "6543210987654321"
    assert message.contact.phone is None
    assert "airtouch" in message.text
    # milliseconds, not seconds
    assert message.received_at == datetime(2026, 11, 20, 15, 30, 0, 349000, tzinfo=UTC)


@pytest.mark.usefixtures("meta_secrets")
def test_instagram_echo_of_our_own_message_is_ignored() -> None:
    result = deliver(instagram, "instagram/echo.json")
    assert result.messages == [] and result.note == "echo: 1"


@pytest.mark.usefixtures("meta_secrets")
def test_instagram_attachment_is_a_photo_with_its_text() -> None:
    (message,) = deliver(instagram, "instagram/attachment.json").messages
    assert message.media == ["photo"]
    assert message.text == "Вот такой цвет хочу"


@pytest.mark.usefixtures("meta_secrets")
def test_instagram_reactions_and_read_receipts_are_not_leads() -> None:
    result = deliver(instagram, "instagram/reaction_and_read.json")
    assert result.messages == []
    assert result.note == "reaction: 1, read receipt: 1"


@pytest.mark.usefixtures("meta_secrets")
def test_instagram_postback_is_a_lead_with_the_button_title() -> None:
    (message,) = deliver(instagram, "instagram/postback.json").messages
    assert message.text == "Записаться на приём"
    assert message.chat_id == "7712345098765432"
    assert message.message_id.startswith("instagram:aWdf")


@pytest.mark.usefixtures("meta_secrets")
def test_instagram_message_from_an_ad_carries_the_attribution() -> None:
    (message,) = deliver(instagram, "instagram/ad_referral.json").messages
    assert message.source == "ad"
    assert message.utm.source == "instagram"
    assert message.utm.campaign == "Ламинирование ресниц за 1990 ₽"
    assert message.utm.content == "120210499988877766"


def _ig_payload(event: dict[str, Any]) -> bytes:
    base = {
        "sender": {"id": "6543210987654321"},
        "recipient": {"id": "17841405793187218"},
        "timestamp": 1795167600123,
    }
    payload = {
        "object": "instagram",
        "entry": [{"id": "17841405793187218", "time": 1, "messaging": [{**base, **event}]}],
    }
    return json.dumps(payload, ensure_ascii=False).encode()


@pytest.mark.usefixtures("meta_secrets")
@pytest.mark.parametrize(
    ("event", "outcome"),
    [
        ({"message": {"mid": "m1", "is_deleted": True}}, "deleted message: 1"),
        (
            {"referral": {"ref": "spring", "source": "SHORTLINK", "type": "OPEN_THREAD"}},
            "referral without a message: 1",
        ),
        ({"message": {"mid": "m2", "attachments": [{"type": "audio", "payload": {"url": "u"}}]}}, ["voice"]),
        ({"message": {"mid": "m3", "attachments": [{"type": "ig_reel", "payload": {"url": "u"}}]}}, ["reel"]),
        ({"message": {"mid": "m4", "is_unsupported": True}}, ["unsupported"]),
        (
            {"message": {"mid": "m5", "text": "А цена?", "reply_to": {"story": {"url": "u", "id": "1"}}}},
            ["story_reply"],
        ),
    ],
)
def test_instagram_event_kinds(event: dict[str, Any], outcome: str | list[str]) -> None:
    result = instagram.handle_webhook(post("instagram", _ig_payload(event)))
    if isinstance(outcome, str):
        assert result.messages == [] and result.note == outcome
    else:
        (message,) = result.messages
        assert message.media == outcome


@pytest.mark.usefixtures("meta_secrets")
def test_instagram_message_from_a_ref_link_is_attributed_to_the_link() -> None:
    event = {
        "message": {
            "mid": "m6",
            "text": "Привет",
            "referral": {"ref": "bio_link", "source": "IGME", "type": "OPEN_THREAD"},
        }
    }
    (message,) = instagram.handle_webhook(post("instagram", _ig_payload(event))).messages
    assert (message.source, message.utm.campaign, message.utm.source) == ("link", "bio_link", "instagram")


@pytest.mark.usefixtures("meta_secrets")
def test_instagram_event_without_sender_is_400() -> None:
    payload = {
        "object": "instagram",
        "entry": [{"id": "1", "messaging": [{"timestamp": 1, "message": {"mid": "m"}}]}],
    }
    with pytest.raises(WebhookError) as refused:
        instagram.handle_webhook(post("instagram", json.dumps(payload).encode()))
    assert refused.value.status == 400


# --------------------------------------------------------------------------- WhatsApp sender


def outbound(text: str, to: str = "79991234501", channel: str = "whatsapp", **extra: Any) -> OutboundMessage:
    return OutboundMessage(id="out-lead42-reply-1", channel=channel, to=to, kind="reply", text=text, **extra)


@pytest.fixture
def graph() -> Any:
    with FakeGraphApi(token=TOKEN, phone_number_ids=(PHONE_NUMBER_ID, "109876543210987")) as fake:
        yield fake


def wa_sender(graph: FakeGraphApi, **kwargs: Any) -> WhatsAppSender:
    return WhatsAppSender(TOKEN, PHONE_NUMBER_ID, requests.Session(), graph.base_url, **kwargs)


def test_whatsapp_sends_text_in_the_documented_wire_format(graph: FakeGraphApi) -> None:
    result = wa_sender(graph).send(outbound("Здравствуйте! Записали вас на субботу, 15:00."))
    (request,) = graph.requests
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in request.path and not request.query
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "79991234501",
        "type": "text",
        "text": {"preview_url": False, "body": "Здравствуйте! Записали вас на субботу, 15:00."},
    }
    assert result.provider_message_id == graph.sent[0].message_id and result.segments == 1
    assert result.provider_message_id.startswith("wamid.")


def test_whatsapp_reaches_a_username_only_client_by_recipient(graph: FakeGraphApi) -> None:
    wa_sender(graph).send(outbound("Добрый вечер! Да, окошко есть.", to="RU.8812047719350268"))
    body = graph.requests[0].json()
    assert body["recipient"] == "RU.8812047719350268" and "to" not in body


def test_whatsapp_replies_from_the_number_the_client_wrote_to_and_quotes_their_message(
    graph: FakeGraphApi,
) -> None:
    message = outbound(
        "Да, можно.",
        business_connection_id="109876543210987",
        reply_to_message_id="whatsapp:wamid.HBgLNzk5OQ==",
    )
    wa_sender(graph).send(message)
    (request,) = graph.requests
    assert request.path == "/v21.0/109876543210987/messages"
    assert request.json()["context"] == {"message_id": "wamid.HBgLNzk5OQ=="}


def test_whatsapp_long_text_is_split_at_sentence_boundaries(graph: FakeGraphApi) -> None:
    sentence = "Маникюр с покрытием гель-лаком длится около двух часов, мастер подберёт оттенок. "
    text = (sentence * 120).strip()  # ~9700 characters
    result = wa_sender(graph).send(outbound(text))
    parts = [s.text for s in graph.sent]
    assert result.segments == len(parts) == 3
    assert all(len(p) <= whatsapp.MAX_TEXT for p in parts)
    assert all(p.endswith("оттенок.") for p in parts)
    assert " ".join(parts) == text
    assert result.provider_message_id == graph.sent[-1].message_id


def test_whatsapp_outside_the_24_hour_window_raises_outside_window_and_a_template_still_goes(
    graph: FakeGraphApi,
) -> None:
    # Given a client who last wrote more than 24 hours ago
    graph.close_window("79991234501")
    sender = wa_sender(graph)
    # When we send free text, Then the caller learns the window is closed
    with pytest.raises(OutsideWindow) as closed:
        sender.send(outbound("Напоминаем о записи завтра в 15:00"))
    assert isinstance(closed.value, SendError) and closed.value.retryable is False
    assert "131047" in closed.value.reason
    # And a template reaches the client
    result = sender.send_template("79991234501", "appointment_reminder", "ru", ["Анна", "завтра в 15:00"])
    assert result.provider_message_id == graph.sent[-1].message_id
    assert graph.requests[-1].json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "79991234501",
        "type": "template",
        "template": {
            "name": "appointment_reminder",
            "language": {"code": "ru"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Анна"},
                        {"type": "text", "text": "завтра в 15:00"},
                    ],
                }
            ],
        },
    }


def test_whatsapp_template_with_named_parameters_and_without_any(graph: FakeGraphApi) -> None:
    sender = wa_sender(graph)
    sender.send_template("79991234501", "appointment_reminder", "ru", {"client_name": "Анна"})
    sender.send_template("79991234501", "hello_world", "en_US")
    named, bare = (r.json()["template"] for r in graph.requests)
    assert named["components"][0]["parameters"] == [
        {"type": "text", "parameter_name": "client_name", "text": "Анна"}
    ]
    assert "components" not in bare


def test_whatsapp_unknown_template_is_not_retried(graph: FakeGraphApi) -> None:
    with pytest.raises(SendError) as failed:
        wa_sender(graph).send_template("79991234501", "no_such_template", "ru")
    assert failed.value.retryable is False and "132001" in failed.value.reason


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        (4, 400, "(#4) Application request limit reached"),
        (80007, 400, "(#80007) There have been too many calls to this WhatsApp Business account."),
        (130429, 400, "(#130429) Rate limit hit"),
        (131056, 400, "(#131056) (Business Account, Consumer Account) pair rate limit hit"),
        (131000, 500, "(#131000) Something went wrong"),
        (2, 503, "(#2) Service temporarily unavailable"),
    ],
)
def test_whatsapp_rate_limits_and_server_trouble_are_retryable(
    graph: FakeGraphApi, code: int, status: int, message: str
) -> None:
    graph.fail_next(code, message, status=status, headers={"Retry-After": "30"})
    with pytest.raises(SendError) as failed:
        wa_sender(graph).send(outbound("Здравствуйте!"))
    assert failed.value.retryable is True and not isinstance(failed.value, OutsideWindow)
    assert failed.value.retry_after == 30.0
    assert str(code) in failed.value.reason
    assert graph.sent == []


@pytest.mark.parametrize(
    ("code", "subcode", "message"),
    [
        (131026, None, "(#131026) Message undeliverable to 79991234501"),
        (190, 463, "Error validating access token: Session has expired"),
        (100, None, "(#100) Invalid parameter"),
        (131049, None, "(#131049) This message was not delivered to maintain healthy ecosystem engagement."),
    ],
)
def test_whatsapp_permanent_errors_are_not_retryable(
    graph: FakeGraphApi, code: int, subcode: int | None, message: str
) -> None:
    graph.fail_next(code, message, subcode=subcode)
    with pytest.raises(SendError) as failed:
        wa_sender(graph).send(outbound("Здравствуйте!"))
    assert failed.value.retryable is False and not isinstance(failed.value, OutsideWindow)
    assert "79991234501" not in failed.value.reason  # the number is masked


def test_whatsapp_wrong_token_is_the_fakes_own_190_and_not_retryable(graph: FakeGraphApi) -> None:
    sender = WhatsAppSender("EAAG-expired", PHONE_NUMBER_ID, requests.Session(), graph.base_url)
    with pytest.raises(SendError) as failed:
        sender.send(outbound("Здравствуйте!"))
    assert failed.value.retryable is False and "error 190" in failed.value.reason
    assert "EAAG-expired" not in failed.value.reason


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b""])
def test_whatsapp_5xx_without_a_graph_body_is_retryable(graph: FakeGraphApi, body: bytes) -> None:
    graph.fail_next_http(502, body)
    with pytest.raises(SendError) as failed:
        wa_sender(graph).send(outbound("Здравствуйте!"))
    assert failed.value.retryable is True


def test_whatsapp_send_without_an_answer_in_time_is_an_unknown_outcome_and_names_no_url(
    graph: FakeGraphApi,
) -> None:
    # The message may have arrived: never blindly sent again.
    graph.delay_next(1.0)
    with pytest.raises(UnknownOutcome) as failed:
        wa_sender(graph, timeout_s=0.2).send(outbound("Здравствуйте!"))
    assert failed.value.retryable is False and "no answer in time" in failed.value.reason
    assert failed.value.__cause__ is None and failed.value.__context__ is None
    assert PHONE_NUMBER_ID not in failed.value.reason


def test_whatsapp_connection_refused_is_retryable() -> None:
    with FakeGraphApi() as gone:
        base_url = gone.base_url
    with pytest.raises(SendError) as failed:
        WhatsAppSender(TOKEN, PHONE_NUMBER_ID, requests.Session(), base_url, timeout_s=1).send(
            outbound("Привет")
        )
    assert failed.value.retryable is True


def test_whatsapp_failure_after_a_sent_part_says_so(graph: FakeGraphApi) -> None:
    sender = wa_sender(graph)
    text = ("Первое предложение длинного ответа. " * 200).strip()
    # Given the API accepts the first part and then throttles
    original = graph.route
    calls = {"n": 0}

    def second_call_throttled(request: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            graph.fail_next(130429, "(#130429) Rate limit hit")
        return original(request)

    graph.server.route = second_call_throttled
    with pytest.raises(SendError) as failed:
        sender.send(outbound(text))
    assert failed.value.retryable is True and "after 1 of 2 parts" in failed.value.reason
    assert len(graph.sent) == 1


def test_whatsapp_empty_text_is_not_sent(graph: FakeGraphApi) -> None:
    with pytest.raises(SendError) as failed:
        wa_sender(graph).send(outbound("   "))
    assert failed.value.retryable is False and graph.requests == []


def test_whatsapp_sender_from_settings_points_at_the_configured_graph(
    graph: FakeGraphApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHATSAPP_TOKEN", TOKEN)
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", PHONE_NUMBER_ID)
    monkeypatch.setenv("META_GRAPH_BASE", graph.base_url)
    WhatsAppSender.from_settings().send(outbound("Здравствуйте!"))
    assert len(graph.sent) == 1
    assert TOKEN not in repr(WhatsAppSender.from_settings())


def test_whatsapp_sender_from_settings_without_a_token_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", PHONE_NUMBER_ID)
    with pytest.raises(SendError) as failed:
        WhatsAppSender.from_settings()
    assert failed.value.retryable is False


# --------------------------------------------------------------------------- Instagram sender


def ig_sender(graph: FakeGraphApi, **kwargs: Any) -> InstagramSender:
    return InstagramSender(TOKEN, requests.Session(), graph.base_url, **kwargs)


def test_instagram_sends_text_in_the_documented_wire_format(graph: FakeGraphApi) -> None:
    result = ig_sender(graph).send(
        outbound("Здравствуйте! Стоимость от 9 000 ₽.", to="6543210987654321", channel="instagram")
    )
    (request,) = graph.requests
    assert request.path == "/v21.0/me/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json() == {
        "recipient": {"id": "6543210987654321"},
        "message": {"text": "Здравствуйте! Стоимость от 9 000 ₽."},
        "messaging_type": "RESPONSE",
    }
    assert result.provider_message_id == graph.sent[0].message_id and result.segments == 1


def test_instagram_splits_by_utf8_bytes_at_sentence_boundaries(graph: FakeGraphApi) -> None:
    sentence = "Окрашивание в технике airtouch занимает от четырёх часов. "
    text = (sentence * 30).strip()  # 1739 characters (two parts by length) but 2969 bytes
    result = ig_sender(graph).send(outbound(text, to="6543210987654321", channel="instagram"))
    parts = [s.text for s in graph.sent]
    assert result.segments == len(parts) == 3
    assert all(utf8_len(p) <= 1000 for p in parts)
    assert all(p.endswith("часов.") for p in parts)
    assert " ".join(parts) == text


def test_instagram_outside_the_window_raises_outside_window(graph: FakeGraphApi) -> None:
    graph.close_window("6543210987654321")
    with pytest.raises(OutsideWindow) as closed:
        ig_sender(graph).send(outbound("Напоминаем о записи", to="6543210987654321", channel="instagram"))
    assert closed.value.retryable is False and "10/2018278" in closed.value.reason


@pytest.mark.parametrize(
    ("code", "subcode", "retryable"),
    [
        (4, None, True),
        (613, None, True),
        (80007, None, True),
        (2, None, True),
        (100, 2018001, False),
        (190, None, False),
    ],
)
def test_instagram_errors(graph: FakeGraphApi, code: int, subcode: int | None, retryable: bool) -> None:
    graph.fail_next(code, f"(#{code}) error", subcode=subcode)
    with pytest.raises(SendError) as failed:
        ig_sender(graph).send(outbound("Привет", to="6543210987654321", channel="instagram"))
    assert failed.value.retryable is retryable and not isinstance(failed.value, OutsideWindow)


# ------------------------------------------------------------------ error mapping, privacy, splitting


@pytest.mark.parametrize(
    ("status", "answer", "kind", "retryable"),
    [
        (400, {"error": {"code": 131047, "message": "Re-engagement message"}}, OutsideWindow, False),
        (
            400,
            {"error": {"code": 10, "error_subcode": 2534022, "message": "outside window"}},
            OutsideWindow,
            False,
        ),
        (429, {"error": {"code": 999, "message": "?"}}, SendError, True),
        (500, {"error": {"code": 190, "message": "token"}}, SendError, False),
        (500, "not a dict", SendError, True),
        (404, None, SendError, False),
    ],
)
def test_graph_error_mapping(status: int, answer: Any, kind: type[SendError], retryable: bool) -> None:
    error = graph_send_error(status, answer)
    assert type(error) is kind and error.retryable is retryable


def test_nothing_secret_or_personal_reaches_the_logs(
    graph: FakeGraphApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    graph.fail_next(131026, "(#131026) Message undeliverable to +7 999 123-45-01")
    sender = wa_sender(graph)
    with pytest.raises(SendError) as failed:
        sender.send(outbound("Секретный текст клиента"))
    sender.send(outbound("Секретный текст клиента"))
    logged = caplog.text + failed.value.reason + repr(sender)
    for private in (TOKEN, "79991234501", "999 123-45-01", "Секретный текст"):
        assert private not in logged


@settings(max_examples=200, deadline=None)
@given(
    text=st.lists(st.sampled_from([*"абвгдеёжз xyz.!?…\n«»", "  ", ". ", "\n\n"]), max_size=300).map("".join),
    limit=st.integers(min_value=8, max_value=120),
    by_bytes=st.booleans(),
)
def test_split_text_never_exceeds_the_limit_and_loses_nothing_but_whitespace(
    text: str, limit: int, by_bytes: bool
) -> None:
    measure = utf8_len if by_bytes else len
    parts = split_text(text, limit, measure)
    assert all(0 < measure(p) <= limit for p in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_split_text_prefers_paragraphs_then_sentences() -> None:
    text = "Первый абзац, короткий.\n\nВторой абзац. В нём два предложения."
    assert split_text(text, 40) == ["Первый абзац, короткий.", "Второй абзац. В нём два предложения."]
    assert split_text("Раз. Два. Три.", 9) == ["Раз. Два.", "Три."]


def test_signature_helper_matches_the_header_meta_sends() -> None:
    body = event_bytes("whatsapp/text.json")
    assert meta.sign_meta_body(body, APP_SECRET) == signed(body)
    meta.verify_meta_signature(
        body, meta.sign_meta_body(body, APP_SECRET).upper().replace("SHA256", "sha256"), APP_SECRET
    )
