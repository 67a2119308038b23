"""VK: the Callback API webhook with every sample event, and the sender against a fake VK API."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from leadflow.adapters.channels.base import (
    SendError,
    UnknownOutcome,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from leadflow.adapters.channels.vk import MAX_TEXT, VkSender, handle_webhook, vk_random_id
from leadflow.domain.models import OutboundMessage
from tests.fakes.http import Request, Response
from tests.fakes.vk_server import FakeVkApi

EVENTS = Path(__file__).resolve().parents[4] / "events" / "vk"
VK_SECRET = "Xk3vN8qLw2Rz"  # the secret key in the sample events
CONFIRMATION_CODE = "5e7d1c9a"
TOKEN = "vk1.a.Zm9vYmFyYmF6cXV4-community-token"


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def callback(body: bytes | dict[str, Any]) -> WebhookRequest:
    raw = json.dumps(body, ensure_ascii=False).encode() if isinstance(body, dict) else body
    return WebhookRequest(
        method="POST", channel="vk", headers={"content-type": "application/json"}, query={}, body=raw
    )


def accepted(body: bytes | dict[str, Any]) -> WebhookResult:
    result = handle_webhook(callback(body))
    assert (result.status, result.body) == (200, "ok")
    assert result.content_type.startswith("text/plain")
    return result


@pytest.fixture
def vk_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VK_SECRET", VK_SECRET)
    monkeypatch.setenv("VK_CONFIRMATION_CODE", CONFIRMATION_CODE)


# --------------------------------------------------------------------------- confirmation and the secret


@pytest.mark.usefixtures("vk_secrets")
def test_confirmation_is_answered_with_the_code_as_plain_text() -> None:
    result = handle_webhook(callback(event("confirmation.json")))
    assert (result.status, result.body) == (200, CONFIRMATION_CODE)
    assert result.content_type.startswith("text/plain") and result.messages == []


def test_confirmation_without_a_configured_code_is_403(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VK_SECRET", VK_SECRET)
    with pytest.raises(WebhookError) as refused:
        handle_webhook(callback(event("confirmation.json")))
    assert refused.value.status == 403


@pytest.mark.parametrize("name", ["confirmation.json", "message_new.json", "message_reply.json"])
def test_unset_vk_secret_refuses_everything(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VK_CONFIRMATION_CODE", CONFIRMATION_CODE)
    with pytest.raises(WebhookError) as refused:
        handle_webhook(callback(event(name)))
    assert refused.value.status == 403


@pytest.mark.usefixtures("vk_secrets")
@pytest.mark.parametrize(
    ("name", "given"),
    [
        (name, given)
        for name in ("confirmation.json", "message_new.json")
        for given in (None, "", "Xk3vN8qLw2Ry", VK_SECRET.lower(), VK_SECRET + " ")
        if (name, given) != ("confirmation.json", None)  # answered: the next test
    ],
)
def test_missing_or_wrong_secret_is_403(name: str, given: str | None) -> None:
    body = event(name)
    if given is None:
        del body["secret"]
    else:
        body["secret"] = given
    with pytest.raises(WebhookError) as refused:
        handle_webhook(callback(body))
    assert refused.value.status == 403


@pytest.mark.usefixtures("vk_secrets")
def test_item14_confirmation_without_a_secret_is_answered() -> None:
    body = event("confirmation.json")
    del body["secret"]
    assert handle_webhook(callback(body)).body == CONFIRMATION_CODE


@pytest.mark.usefixtures("vk_secrets")
@pytest.mark.parametrize("configured", ["218734561", " club218734561 ", "-218734561", "public218734561"])
def test_item14_vk_group_id_spellings_name_the_community(configured: str, monkeypatch) -> None:
    monkeypatch.setenv("VK_GROUP_ID", configured)
    assert handle_webhook(callback(event("confirmation.json"))).body == CONFIRMATION_CODE
    with pytest.raises(WebhookError) as refused:
        handle_webhook(callback({**event("confirmation.json"), "group_id": 1}))
    assert refused.value.status == 403


@pytest.mark.usefixtures("vk_secrets")
@pytest.mark.parametrize("group_id", [None, 0, -1])
def test_item14_a_callback_without_our_group_id_is_403(group_id: object, monkeypatch) -> None:
    monkeypatch.setenv("VK_GROUP_ID", "218734561")
    body = event("message_new.json")
    body["group_id"] = group_id
    with pytest.raises(WebhookError) as refused:
        handle_webhook(callback(body))
    assert refused.value.status in (400, 403)


@pytest.mark.usefixtures("vk_secrets")
def test_item14_a_vk_group_id_that_is_no_id_refuses_everything(monkeypatch) -> None:
    monkeypatch.setenv("VK_GROUP_ID", "salon-lotos")
    with pytest.raises(WebhookError) as refused:
        handle_webhook(callback(event("message_new.json")))
    assert refused.value.status == 403


@pytest.mark.usefixtures("vk_secrets")
@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"\xff\xfe",
        b"[]",
        b'"message_new"',
        b'{"object": {}, "secret": "Xk3vN8qLw2Rz"}',
        b'{"type": "", "secret": "Xk3vN8qLw2Rz"}',
        b'{"type": "message_new", "secret": "Xk3vN8qLw2Rz", "event_id": "e1"}',
        b'{"type": "message_new", "secret": "Xk3vN8qLw2Rz", "event_id": "e1", '
        b'"object": {"message": {"text": "hi"}}}',
        b'{"type": "message_new", "secret": "Xk3vN8qLw2Rz", "event_id": "e1", '
        b'"object": {"message": {"date": "yesterday", "from_id": 1, "peer_id": 1}}}',
    ],
)
def test_malformed_callbacks_are_400(body: bytes) -> None:
    with pytest.raises(WebhookError) as refused:
        handle_webhook(callback(body))
    assert refused.value.status == 400
    assert "hi" not in refused.value.reason


@pytest.mark.usefixtures("vk_secrets")
def test_only_post_is_accepted() -> None:
    request = WebhookRequest(method="GET", channel="vk", headers={}, query={}, body=b"")
    with pytest.raises(WebhookError) as refused:
        handle_webhook(request)
    assert refused.value.status == 405


# --------------------------------------------------------------------------- events


@pytest.mark.usefixtures("vk_secrets")
def test_message_new_becomes_a_lead_attributed_to_its_ref_link() -> None:
    (message,) = accepted(event("message_new.json")).messages
    assert message.message_id == "vk:8f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6"
    assert message.channel == "vk"
    assert message.chat_id == "512043187"
    assert message.contact.channel_user_id == "512043187"
    assert message.contact.phone is None
    assert message.text.startswith("Добрый вечер! Подскажите, можно записаться на шиномонтаж")
    assert message.media == []
    assert message.received_at == datetime(2026, 11, 20, 17, 5, tzinfo=UTC)
    assert message.source == "vk_ads"
    assert (message.utm.source, message.utm.campaign) == ("vk_ads", "winter_tyres")


@pytest.mark.usefixtures("vk_secrets")
def test_voice_message_is_a_lead_with_voice_media() -> None:
    (message,) = accepted(event("message_new_audio_message.json")).messages
    assert message.media == ["voice"]
    assert message.text == ""
    assert message.chat_id == "389015226"
    assert message.source is None and message.utm.is_empty()


@pytest.mark.usefixtures("vk_secrets")
def test_photo_with_geo_is_photo_and_location() -> None:
    (message,) = accepted(event("message_new_photo_geo.json")).messages
    assert message.media == ["photo", "location"]
    assert "подвеска" in message.text


@pytest.mark.usefixtures("vk_secrets")
def test_our_own_reply_is_acknowledged_without_a_lead() -> None:
    result = accepted(event("message_reply.json"))
    assert result.messages == [] and result.note == "message_reply event"


@pytest.mark.usefixtures("vk_secrets")
@pytest.mark.parametrize(
    "kind", ["message_edit", "message_allow", "message_typing_state", "group_join", "wall_post_new"]
)
def test_other_events_are_acknowledged_with_a_note(kind: str) -> None:
    body = {
        "type": kind,
        "object": {"user_id": 1},
        "group_id": 218734561,
        "event_id": "e",
        "secret": VK_SECRET,
    }
    result = accepted(body)
    assert result.messages == [] and result.note == f"{kind} event"


@pytest.mark.usefixtures("vk_secrets")
def test_a_redelivered_event_keeps_its_message_id_so_ingest_drops_the_copy() -> None:
    first = accepted(event("message_new.json")).messages[0]
    again = accepted(event("message_new.json")).messages[0]
    assert first.message_id == again.message_id


@pytest.mark.usefixtures("vk_secrets")
def test_group_chat_messages_are_not_leads() -> None:
    body = event("message_new.json")
    body["object"]["message"]["peer_id"] = 2000000007
    result = accepted(body)
    assert result.messages == [] and result.note == "group chat message"


@pytest.mark.usefixtures("vk_secrets")
def test_old_api_versions_send_the_message_as_the_object() -> None:
    body = event("message_new.json")
    body["object"] = body["object"]["message"]
    body["v"] = "5.80"
    (message,) = accepted(body).messages
    assert message.chat_id == "512043187" and message.text.startswith("Добрый вечер")


@pytest.mark.usefixtures("vk_secrets")
@pytest.mark.parametrize(
    ("attachment", "kind"),
    [
        ("doc", "document"),
        ("video", "video"),
        ("sticker", "sticker"),
        ("wall", "wall_post"),
        ("brand_new", "brand_new"),
    ],
)
def test_attachment_kinds(attachment: str, kind: str) -> None:
    body = event("message_new.json")
    body["object"]["message"]["attachments"] = [{"type": attachment, attachment: {"id": 1}}]
    (message,) = accepted(body).messages
    assert message.media == [kind]


@pytest.mark.usefixtures("vk_secrets")
def test_a_ref_without_ref_source_is_attributed_to_a_link() -> None:
    body = event("message_new.json")
    del body["object"]["message"]["ref_source"]
    (message,) = accepted(body).messages
    assert (message.source, message.utm.source, message.utm.campaign) == ("link", "link", "winter_tyres")


# --------------------------------------------------------------------------- sender


def outbound(text: str, to: str = "512043187", id_: str = "out-lead7-reply-1") -> OutboundMessage:
    return OutboundMessage(id=id_, channel="vk", to=to, kind="reply", text=text)


@pytest.fixture
def vk() -> Any:
    with FakeVkApi(token=TOKEN) as fake:
        yield fake


def sender(vk: FakeVkApi, **kwargs: Any) -> VkSender:
    return VkSender(TOKEN, requests.Session(), vk.base_url, **kwargs)


def test_sends_messages_send_with_peer_text_random_id_and_version(vk: FakeVkApi) -> None:
    result = sender(vk).send(outbound("Здравствуйте! Да, в воскресенье есть окно в 10:30."))
    (request,) = vk.requests
    assert request.method == "POST" and request.path == "/method/messages.send"
    form = request.form()
    assert form["peer_id"] == "512043187"
    assert form["message"] == "Здравствуйте! Да, в воскресенье есть окно в 10:30."
    assert form["random_id"] == str(vk_random_id("out-lead7-reply-1", 0))
    assert form["v"] == "5.199"
    # the token travels in the body, never in the URL
    assert form["access_token"] == TOKEN and not request.query
    assert result.provider_message_id == str(vk.sent[0].message_id) and result.segments == 1


def test_random_id_is_stable_across_retries_and_vk_drops_the_repeat(vk: FakeVkApi) -> None:
    # Given a send that failed with a retryable error after VK may or may not have taken it
    vk.fail_next(10, "Internal server error")
    message = outbound("Записали вас на воскресенье, 10:30.")
    with pytest.raises(SendError) as failed:
        sender(vk).send(message)
    assert failed.value.retryable is True
    # When the queue retries the same outbound message twice
    first = sender(vk).send(message)
    second = sender(vk).send(message)
    # Then every attempt carried the same random_id and the client got one message
    random_ids = {r.form()["random_id"] for r in vk.requests}
    assert random_ids == {str(vk_random_id(message.id))}
    assert len(vk.sent) == 1
    assert first.provider_message_id == second.provider_message_id == str(vk.sent[0].message_id)


def test_long_text_is_split_and_a_retry_after_a_partial_failure_sends_each_part_once(vk: FakeVkApi) -> None:
    sentence = "Шиномонтаж с балансировкой занимает около сорока минут, приезжайте заранее. "
    text = (sentence * 120).strip()  # ~9000 characters
    original = vk.route
    calls = {"n": 0}

    def flood_on_second_call(request: Request) -> Response:
        calls["n"] += 1
        if calls["n"] == 2:
            vk.fail_next(9, "Flood control")
        return original(request)

    vk.server.route = flood_on_second_call
    with pytest.raises(SendError) as failed:
        sender(vk).send(outbound(text))
    assert failed.value.retryable is True and "after 1 of 3 parts" in failed.value.reason
    result = sender(vk).send(outbound(text))
    assert result.segments == 3
    assert len(vk.sent) == 3  # the first part was not sent twice
    assert all(len(s.text) <= MAX_TEXT and s.text.endswith("заранее.") for s in vk.sent)
    assert " ".join(s.text for s in vk.sent) == text
    assert len({s.random_id for s in vk.sent}) == 3


@pytest.mark.parametrize(
    ("code", "message", "retryable"),
    [
        (6, "Too many requests per second", True),
        (9, "Flood control", True),
        (10, "Internal server error", True),
        (901, "Can't send messages for users without permission", False),
        (902, "Can't send messages to this user due to their privacy settings", False),
        (5, "User authorization failed: access_token has expired.", False),
        (100, "One of the parameters specified was missing or invalid", False),
    ],
)
def test_vk_errors_come_with_http_200_and_are_classified(
    vk: FakeVkApi, code: int, message: str, retryable: bool
) -> None:
    vk.fail_next(code, message)
    with pytest.raises(SendError) as failed:
        sender(vk).send(outbound("Здравствуйте!"))
    assert failed.value.retryable is retryable
    assert f"error {code}" in failed.value.reason
    assert vk.sent == []


def test_too_many_requests_suggests_a_short_wait(vk: FakeVkApi) -> None:
    vk.fail_next(6, "Too many requests per second")
    with pytest.raises(SendError) as failed:
        sender(vk).send(outbound("Здравствуйте!"))
    assert failed.value.retry_after == 1.0


def test_a_user_who_did_not_allow_messages_is_not_retried(vk: FakeVkApi) -> None:
    vk.deny_messages(389015226)
    with pytest.raises(SendError) as failed:
        sender(vk).send(outbound("Здравствуйте!", to="389015226"))
    assert failed.value.retryable is False and "901" in failed.value.reason


def test_a_wrong_token_is_the_fakes_own_error_5(vk: FakeVkApi) -> None:
    with pytest.raises(SendError) as failed:
        VkSender("vk1.a.revoked", requests.Session(), vk.base_url).send(outbound("Здравствуйте!"))
    assert failed.value.retryable is False and "error 5" in failed.value.reason
    assert "vk1.a.revoked" not in failed.value.reason


@pytest.mark.parametrize(("status", "retryable"), [(502, True), (503, True), (404, False)])
def test_http_failures(vk: FakeVkApi, status: int, retryable: bool) -> None:
    vk.fail_next_http(status, "<html>nginx</html>")
    with pytest.raises(SendError) as failed:
        sender(vk).send(outbound("Здравствуйте!"))
    assert failed.value.retryable is retryable


def test_a_send_without_an_answer_in_time_is_an_unknown_outcome_and_keeps_no_url(vk: FakeVkApi) -> None:
    # The message may have arrived: never blindly sent again.
    vk.delay_next(1.0)
    with pytest.raises(UnknownOutcome) as failed:
        sender(vk, timeout_s=0.2).send(outbound("Здравствуйте!"))
    assert failed.value.retryable is False and "no answer in time" in failed.value.reason
    assert failed.value.__cause__ is None and failed.value.__context__ is None


def test_recipient_that_is_not_a_peer_id_is_refused_without_a_call(vk: FakeVkApi) -> None:
    with pytest.raises(SendError) as failed:
        sender(vk).send(outbound("Здравствуйте!", to="id512043187"))
    assert failed.value.retryable is False and vk.requests == []


def test_nothing_secret_or_personal_reaches_logs_or_reasons(
    vk: FakeVkApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vk.fail_next(914, "Message is too long: +7 999 123-45-01")
    with pytest.raises(SendError) as failed:
        sender(vk).send(outbound("Личный текст клиента"))
    logged = caplog.text + failed.value.reason + repr(sender(vk))
    for private in (TOKEN, "Личный текст", "512043187", "999 123-45-01"):
        assert private not in logged


def test_sender_from_settings_uses_the_configured_base(
    vk: FakeVkApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VK_TOKEN", TOKEN)
    monkeypatch.setenv("VK_API_BASE", vk.base_url)
    VkSender.from_settings().send(outbound("Здравствуйте!"))
    assert len(vk.sent) == 1


def test_sender_from_settings_without_a_token_refuses() -> None:
    with pytest.raises(SendError) as failed:
        VkSender.from_settings()
    assert failed.value.retryable is False


def test_random_id_is_a_positive_int32_fixed_by_id_and_part() -> None:
    ids = {vk_random_id(f"out-{n}", part) for n in range(500) for part in range(3)}
    assert len(ids) == 1500
    assert all(0 < i <= 2**31 - 1 for i in ids)
    assert vk_random_id("out-1", 0) == vk_random_id("out-1", 0) != vk_random_id("out-1", 1)
