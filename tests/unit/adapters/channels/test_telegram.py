"""Telegram: every sample Update through the webhook, and the sender against a fake Bot API."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from leadflow.adapters.channels.base import SendError, UnknownOutcome, WebhookError, WebhookRequest
from leadflow.adapters.channels.telegram import (
    MAX_TEXT_UTF16,
    TelegramBot,
    TelegramSender,
    handle_webhook,
    parse_start_payload,
)
from leadflow.adapters.channels.toolkit import split_text, utf16_len
from leadflow.domain.models import OutboundMessage
from tests.fakes.telegram_server import DEFAULT_TOKEN, FakeTelegram

EVENTS = Path(__file__).resolve().parents[4] / "events" / "telegram"
SECRET = "wh-secret_4f9a2c7e1b"


def update(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def webhook(body: bytes | dict, secret: str | None = SECRET) -> WebhookRequest:
    raw = json.dumps(body, ensure_ascii=False).encode() if isinstance(body, dict) else body
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    return WebhookRequest(method="POST", channel="telegram", headers=headers, query={}, body=raw)


@pytest.fixture
def secret_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)


# --------------------------------------------------------------------------- sender verification


def test_unset_secret_refuses_even_a_correct_looking_request() -> None:
    with pytest.raises(WebhookError) as refused:
        handle_webhook(webhook(update("text_message.json")))
    assert refused.value.status == 403


@pytest.mark.usefixtures("secret_set")
@pytest.mark.parametrize("given", [None, "", "wh-secret_4f9a2c7e1c", SECRET + "x", SECRET.upper()])
def test_wrong_or_missing_secret_is_403(given: str | None) -> None:
    with pytest.raises(WebhookError) as refused:
        handle_webhook(webhook(update("text_message.json"), secret=given))
    assert refused.value.status == 403


@pytest.mark.usefixtures("secret_set")
def test_secret_is_checked_before_the_body_is_read() -> None:
    with pytest.raises(WebhookError) as refused:
        handle_webhook(webhook(b"{not json", secret="nope"))
    assert refused.value.status == 403


@pytest.mark.usefixtures("secret_set")
@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b'"update"',
        b'{"message": {"text": "hi"}}',
        b'{"update_id": "soon"}',
        b'{"update_id": 1, "message": {"message_id": 5, "text": "no chat, no date"}}',
        b'{"update_id": 1, "callback_query": {"id": "9", "data": "accept:L-1"}}',
    ],
)
def test_malformed_update_is_400_without_quoting_the_input(body: bytes) -> None:
    with pytest.raises(WebhookError) as refused:
        handle_webhook(webhook(body))
    assert refused.value.status == 400
    for quoted in ("hi", "soon", "no chat, no date", "accept:L-1"):
        assert f"{quoted!r}" not in refused.value.reason and f'"{quoted}"' not in refused.value.reason
        assert quoted not in refused.value.reason.split()


@pytest.mark.usefixtures("secret_set")
def test_oversized_body_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "200")
    with pytest.raises(WebhookError) as refused:
        handle_webhook(webhook(update("reply_to_card.json")))
    assert refused.value.status == 413


# --------------------------------------------------------------------------- client messages


@pytest.mark.usefixtures("secret_set")
def test_text_message_becomes_a_lead_message() -> None:
    result = handle_webhook(webhook(update("text_message.json")))

    assert result.status == 200 and result.staff_events == []
    [message] = result.messages
    assert message.message_id == "telegram:734019201"
    assert message.channel == "telegram"
    assert message.chat_id == "5123456789"
    assert message.contact.channel_user_id == "5123456789"
    assert message.contact.name == "Анна"
    assert message.contact.phone is None
    assert message.text.startswith("Здравствуйте! Хочу записаться на маникюр")
    assert message.media == []
    assert message.received_at == datetime(2025, 3, 8, 8, 10, 5, tzinfo=UTC)
    assert message.business_connection_id is None
    assert message.source is None and message.promo is None and message.utm.is_empty()


@pytest.mark.usefixtures("secret_set")
def test_shared_own_contact_gives_phone_and_full_name() -> None:
    [message] = handle_webhook(webhook(update("contact.json"))).messages

    assert message.contact.phone == "+79161234567"
    assert message.contact.name == "Анна Смирнова"
    assert message.text == ""
    assert message.media == ["contact"]


@pytest.mark.usefixtures("secret_set")
def test_someone_elses_contact_gives_the_phone_but_keeps_the_senders_name() -> None:
    payload = update("contact.json")
    payload["message"]["contact"] = {
        "phone_number": "+7 (812) 407-15-20",
        "first_name": "Мама",
        "user_id": 42,
    }

    [message] = handle_webhook(webhook(payload)).messages

    assert message.contact.phone == "+78124071520"
    assert message.contact.name == "Анна"


@pytest.mark.usefixtures("secret_set")
def test_unparseable_shared_phone_keeps_the_lead_without_a_phone() -> None:
    payload = update("contact.json")
    payload["message"]["contact"]["phone_number"] = "12"

    [message] = handle_webhook(webhook(payload)).messages

    assert message.contact.phone is None
    assert message.contact.channel_user_id == "5123456789"


@pytest.mark.usefixtures("secret_set")
@pytest.mark.parametrize(
    ("fixture", "media", "text"),
    [
        ("voice.json", ["voice"], ""),
        ("photo_caption.json", ["photo"], "Вот такой дизайн хочу, сможете повторить? На пятницу вечером"),
        ("location.json", ["location"], ""),
    ],
)
def test_media_messages_are_never_dropped(fixture: str, media: list[str], text: str) -> None:
    [message] = handle_webhook(webhook(update(fixture))).messages

    assert message.media == media
    assert message.text == text


@pytest.mark.usefixtures("secret_set")
@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("audio", {"file_id": "CQAC", "file_unique_id": "u1", "duration": 61}, "audio"),
        (
            "video",
            {"file_id": "BAAC", "file_unique_id": "u2", "width": 720, "height": 1280, "duration": 9},
            "video",
        ),
        (
            "video_note",
            {"file_id": "DQAC", "file_unique_id": "u3", "length": 240, "duration": 12},
            "video_note",
        ),
        ("document", {"file_id": "BQAC", "file_unique_id": "u4", "file_name": "направление.pdf"}, "document"),
        (
            "sticker",
            {
                "file_id": "CAAC",
                "file_unique_id": "u5",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            },
            "sticker",
        ),
    ],
)
def test_each_media_kind_is_named(field: str, value: dict, kind: str) -> None:
    payload = update("voice.json")
    del payload["message"]["voice"]
    payload["message"][field] = value

    [message] = handle_webhook(webhook(payload)).messages

    assert message.media == [kind]


@pytest.mark.usefixtures("secret_set")
def test_gif_is_an_animation_not_also_a_document() -> None:
    payload = update("voice.json")
    del payload["message"]["voice"]
    payload["message"]["animation"] = {
        "file_id": "CgAC",
        "file_unique_id": "a",
        "width": 1,
        "height": 1,
        "duration": 2,
    }
    payload["message"]["document"] = {"file_id": "CgAC", "file_unique_id": "a"}

    [message] = handle_webhook(webhook(payload)).messages

    assert message.media == ["animation"]


@pytest.mark.usefixtures("secret_set")
def test_start_with_utm_payload_records_source_campaign_and_promo() -> None:
    [message] = handle_webhook(webhook(update("start_payload.json"))).messages

    assert message.chat_id == "6712309845"
    assert message.contact.name == "Елена"
    assert message.text == ""
    assert message.source == "instagram"
    assert message.utm.source == "instagram"
    assert message.utm.campaign == "march8"
    assert message.promo == "ROSES"


@pytest.mark.parametrize(
    ("payload", "source", "utm", "promo"),
    [
        ("", None, {}, None),
        ("src-instagram", "instagram", {"source": "instagram"}, None),
        ("promo_SPRING10", None, {}, "SPRING10"),
        (
            "src-yandex__med-cpc__cmp-brows_march__trm-laminirovanie",
            "yandex",
            {"source": "yandex", "medium": "cpc", "campaign": "brows_march", "term": "laminirovanie"},
            None,
        ),
        ("SRC_VK__cnt-stories__promo-FIRST15", "vk", {"source": "vk", "content": "stories"}, "FIRST15"),
        ("flyer", "flyer", {}, None),
        ("2GIS", "2gis", {}, None),
    ],
)
def test_start_payload_scheme(payload: str, source: str | None, utm: dict, promo: str | None) -> None:
    got_source, got_utm, got_promo = parse_start_payload(payload)

    assert got_source == source
    assert got_utm.model_dump(exclude_none=True) == utm
    assert got_promo == promo


@pytest.mark.usefixtures("secret_set")
def test_plain_start_is_a_lead_without_a_source() -> None:
    payload = update("start_payload.json")
    payload["message"]["text"] = "/start"

    [message] = handle_webhook(webhook(payload)).messages

    assert message.text == "" and message.source is None and message.promo is None


@pytest.mark.usefixtures("secret_set")
def test_unknown_command_from_a_client_is_an_ordinary_message() -> None:
    payload = update("text_message.json")
    payload["message"]["text"] = "/help подскажите цены"
    payload["message"]["entities"] = [{"offset": 0, "length": 5, "type": "bot_command"}]

    result = handle_webhook(webhook(payload))

    assert result.staff_events == []
    assert result.messages[0].text == "/help подскажите цены"


@pytest.mark.usefixtures("secret_set")
def test_business_message_keeps_the_connection_for_the_reply() -> None:
    [message] = handle_webhook(webhook(update("business_message.json"))).messages

    assert message.business_connection_id == "AQAAAJ6YGbMBAAAA1n0cNw2R7kU"
    assert message.chat_id == "5876543210"
    assert message.contact.name == "Светлана"
    assert message.message_id == "telegram:734019208"


@pytest.mark.usefixtures("secret_set")
def test_business_owner_writing_in_the_business_chat_is_not_a_lead() -> None:
    payload = update("business_message.json")
    payload["business_message"]["from"] = {"id": 6345678901, "is_bot": False, "first_name": "Ирина"}

    result = handle_webhook(webhook(payload))

    assert result.messages == [] and result.staff_events == [] and result.note


@pytest.mark.usefixtures("secret_set")
@pytest.mark.parametrize(
    "fixture",
    ["edited_message.json", "business_connection.json", "group_message.json", "my_chat_member.json"],
)
def test_updates_we_do_not_take_are_answered_200_with_a_note(fixture: str) -> None:
    result = handle_webhook(webhook(update(fixture)))

    assert result.status == 200
    assert result.messages == [] and result.staff_events == []
    assert result.note


@pytest.mark.usefixtures("secret_set")
def test_edited_business_message_is_ignored() -> None:
    payload = update("business_message.json")
    payload["edited_business_message"] = payload.pop("business_message")

    result = handle_webhook(webhook(payload))

    assert result.messages == [] and result.note and "edited" in result.note


@pytest.mark.usefixtures("secret_set")
def test_message_from_a_bot_is_ignored() -> None:
    payload = update("text_message.json")
    payload["message"]["from"]["is_bot"] = True

    result = handle_webhook(webhook(payload))

    assert result.messages == [] and result.note


@pytest.mark.usefixtures("secret_set")
@pytest.mark.parametrize(
    ("name", "update_body"),
    [("poll", {"id": "1", "question": "?"}), ("chat_join_request", {"chat": {"id": -1}})],
)
def test_other_update_types_are_ignored(name: str, update_body: dict) -> None:
    result = handle_webhook(webhook({"update_id": 99, name: update_body}))

    assert result.status == 200 and result.messages == [] and result.staff_events == [] and result.note


@pytest.mark.usefixtures("secret_set")
def test_personal_data_never_reaches_notes_or_reasons() -> None:
    for path in sorted(EVENTS.glob("*.json")):
        result = handle_webhook(webhook(update(path.name)))
        for secret_bit in ("Анна", "79161234567", "маникюр", "Игорь", "поменяться"):
            assert secret_bit not in (result.note or "")


# --------------------------------------------------------------------------- staff traffic


@pytest.mark.usefixtures("secret_set")
def test_button_press_on_a_card_is_a_staff_event() -> None:
    result = handle_webhook(webhook(update("callback_query.json")))

    assert result.messages == []
    [event] = result.staff_events
    assert event.event_id == "telegram:734019209"
    assert event.action == "accept:L-0412"
    assert event.callback_query_id == "4382915764839201537"
    assert event.chat_id == "6234567890"
    assert event.user_id == "6234567890"
    assert event.reply_to_message_id == "8841"
    assert abs((datetime.now(UTC) - event.received_at).total_seconds()) < 60


@pytest.mark.usefixtures("secret_set")
def test_button_on_a_card_older_than_48_hours_still_counts() -> None:
    payload = update("callback_query.json")
    payload["callback_query"]["message"] = {
        "chat": {"id": 6234567890, "type": "private"},
        "message_id": 8841,
        "date": 0,
    }

    [event] = handle_webhook(webhook(payload)).staff_events

    assert event.reply_to_message_id == "8841" and event.chat_id == "6234567890"


@pytest.mark.usefixtures("secret_set")
def test_reply_to_a_card_is_a_staff_reply() -> None:
    [event] = handle_webhook(webhook(update("reply_to_card.json"))).staff_events

    assert event.action == "reply"
    assert event.reply_to_message_id == "8841"
    assert event.text == "Перезвонила, записала на 8 марта в 12:30 к Наталье"
    assert event.chat_id == "6234567890"
    assert event.received_at == datetime(2025, 3, 8, 9, 13, 10, tzinfo=UTC)


@pytest.mark.usefixtures("secret_set")
def test_reply_to_a_person_is_not_a_staff_reply() -> None:
    payload = update("reply_to_card.json")
    payload["message"]["reply_to_message"]["from"] = {"id": 5123456789, "is_bot": False, "first_name": "Анна"}

    result = handle_webhook(webhook(payload))

    assert result.staff_events == [] and len(result.messages) == 1


@pytest.mark.usefixtures("secret_set")
def test_off_command_carries_its_date() -> None:
    [event] = handle_webhook(webhook(update("off_command.json"))).staff_events

    assert event.action == "/off"
    assert event.text == "2025-03-10"
    assert event.user_id == "6234567890"


@pytest.mark.usefixtures("secret_set")
@pytest.mark.parametrize("command", ["/stop", "/on", "/leads", "/today", "/bot", "/leads@salon_lotos_bot"])
def test_staff_commands(command: str) -> None:
    payload = update("off_command.json")
    payload["message"]["text"] = command
    payload["message"]["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]

    [event] = handle_webhook(webhook(payload)).staff_events

    assert event.action == command.split("@")[0]
    assert event.text == ""


@pytest.mark.usefixtures("secret_set")
def test_start_with_an_invite_is_staff_onboarding() -> None:
    result = handle_webhook(webhook(update("start_invite.json")))

    # Both readings of a private chat's update go to ingest, which keeps the onboarding one for any
    # chat (tests/unit/steps/ingest/test_every_channel.py: start_invite queues no client message).
    assert result.chat_decides
    [event] = result.staff_events
    assert event.action == "/start"
    assert event.text == "inv-7Kq2ZpX9"
    assert event.user_id == "6456789012"


@pytest.mark.usefixtures("secret_set")
def test_staff_reply_in_a_staff_group_counts_but_group_chatter_does_not() -> None:
    payload = update("reply_to_card.json")
    payload["message"]["chat"] = {"id": -1002187654321, "title": "Лотос — мастера", "type": "supergroup"}

    [event] = handle_webhook(webhook(payload)).staff_events

    assert event.chat_id == "-1002187654321" and event.action == "reply"
    assert handle_webhook(webhook(update("group_message.json"))).staff_events == []


# --------------------------------------------------------------------------- Bot API client


@pytest.fixture
def tg() -> Any:
    with FakeTelegram() as server:
        yield server


def bot_for(tg: FakeTelegram, token: str | None = None, timeout_s: float = 5) -> TelegramBot:
    return TelegramBot(token or tg.token, requests.Session(), base_url=tg.url, timeout_s=timeout_s)


def outbound(text: str, **fields: Any) -> OutboundMessage:
    return OutboundMessage(id="out-1", channel="telegram", to="5123456789", kind="reply", text=text, **fields)


def test_send_message_returns_the_message_id_and_the_fake_records_it(tg: FakeTelegram) -> None:
    bot = bot_for(tg)

    first = bot.send_message(5123456789, "Здравствуйте, Анна! Суббота 15:00 свободна.")
    second = bot.send_message(
        "5123456789", "Записать вас?", buttons=[[{"text": "Да", "callback_data": "yes"}]]
    )

    assert second == first + 1
    assert tg.texts(5123456789) == ["Здравствуйте, Анна! Суббота 15:00 свободна.", "Записать вас?"]
    body = tg.requests[-1].json()
    assert body["reply_markup"] == {"inline_keyboard": [[{"text": "Да", "callback_data": "yes"}]]}
    assert tg.requests[-1].path == f"/bot{tg.token}/sendMessage"


def test_fake_accepts_form_bodies_with_json_encoded_markup(tg: FakeTelegram) -> None:
    markup = json.dumps({"inline_keyboard": [[{"text": "Беру", "callback_data": "accept:L-7"}]]})

    answer = requests.post(
        f"{tg.url}/bot{tg.token}/sendMessage",
        data={"chat_id": "6234567890", "text": "Заявка", "reply_markup": markup},
        timeout=5,
    ).json()

    assert (
        answer["ok"] is True and answer["result"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Беру"
    )


def test_fake_rejects_callback_data_over_64_bytes(tg: FakeTelegram) -> None:
    with pytest.raises(SendError) as failed:
        bot_for(tg).send_message(1, "x", buttons=[[{"text": "Беру", "callback_data": "я" * 33}]])
    assert "BUTTON_DATA_INVALID" in failed.value.reason and not failed.value.retryable


def test_reply_and_business_connection_and_parse_mode_are_passed(tg: FakeTelegram) -> None:
    bot = bot_for(tg)
    card = bot.send_message(6234567890, "Новая заявка")

    bot.send_message(
        6234567890,
        "Принято",
        reply_to_message_id=str(card),
        business_connection_id="AQAAAJ6Y",
        parse_mode="HTML",
    )

    sent = tg.sent["6234567890"][-1]
    assert sent["reply_to_message"]["message_id"] == card
    assert sent["business_connection_id"] == "AQAAAJ6Y"
    assert sent["parse_mode"] == "HTML"


def test_reply_to_a_deleted_message_is_still_sent(tg: FakeTelegram) -> None:
    message_id = bot_for(tg).send_message(5123456789, "Ответ", reply_to_message_id=999999)

    assert message_id and "reply_to_message" not in tg.sent["5123456789"][-1]


def test_edit_changes_the_card_and_an_unchanged_edit_is_success(tg: FakeTelegram) -> None:
    bot = bot_for(tg)
    card = bot.send_message(
        6234567890, "Заявка #L-0412", buttons=[[{"text": "Беру", "callback_data": "accept:L-0412"}]]
    )

    bot.edit_message_text(6234567890, card, "Заявка #L-0412 — взяла Ольга")
    bot.edit_message_text(6234567890, card, "Заявка #L-0412 — взяла Ольга")  # a second press: not modified

    assert tg.sent["6234567890"][0]["text"] == "Заявка #L-0412 — взяла Ольга"
    assert "reply_markup" not in tg.sent["6234567890"][0]
    assert tg.requests[-1].path.endswith("/editMessageText")


def test_edit_of_an_unknown_message_is_a_permanent_error(tg: FakeTelegram) -> None:
    with pytest.raises(SendError) as failed:
        bot_for(tg).edit_message_text(6234567890, 4242, "текст")

    assert not failed.value.retryable
    assert "message to edit not found" in failed.value.reason


def test_answer_callback_query_and_a_second_answer_fails(tg: FakeTelegram) -> None:
    bot = bot_for(tg)
    bot.answer_callback_query("4382915764839201537", "Заявка ваша")

    assert tg.answered_callbacks == {"4382915764839201537": "Заявка ваша"}
    with pytest.raises(SendError) as failed:
        bot.answer_callback_query("4382915764839201537")
    assert not failed.value.retryable and "query is too old" in failed.value.reason


def test_set_webhook_and_get_me(tg: FakeTelegram) -> None:
    bot = bot_for(tg)

    bot.set_webhook(
        "https://abc.execute-api.eu-central-1.amazonaws.com/webhooks/telegram",
        SECRET,
        ["message", "callback_query"],
    )

    assert tg.webhook == {
        "url": "https://abc.execute-api.eu-central-1.amazonaws.com/webhooks/telegram",
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
    }
    assert bot.get_me()["username"] == "salon_lotos_bot"
    with pytest.raises(SendError) as refused:
        bot.set_webhook("http://127.0.0.1:3000/webhooks/telegram", SECRET, [])
    assert "HTTPS" in refused.value.reason and not refused.value.retryable


def test_set_webhook_defaults_to_the_updates_we_handle(tg: FakeTelegram) -> None:
    bot_for(tg).set_webhook("https://example.org/webhooks/telegram", SECRET)

    assert tg.webhook is not None
    assert set(tg.webhook["allowed_updates"]) == {
        "message",
        "business_connection",
        "business_message",
        "callback_query",
    }


@pytest.mark.parametrize(
    ("fault", "retryable", "retry_after", "words"),
    [
        ("rate_limit", True, 7.0, "Too Many Requests"),
        ("server_error", True, None, "500"),
        ("html_502", True, None, "502"),
        ("chat_not_found", False, None, "chat not found"),
        ("blocked", False, None, "bot was blocked by the user"),
    ],
)
def test_bot_api_errors_are_classified(
    tg: FakeTelegram, fault: str, retryable: bool, retry_after: float | None, words: str
) -> None:
    tg.fail_next(fault, retry_after=7)

    with pytest.raises(SendError) as failed:
        bot_for(tg).send_message(5123456789, "Добрый день!")

    assert failed.value.retryable is retryable
    assert failed.value.retry_after == retry_after
    assert words in failed.value.reason
    assert tg.sent["5123456789"] == []


def test_wrong_token_is_permanent_and_never_quoted(tg: FakeTelegram) -> None:
    wrong = "7012345678:AAFk3v9Qx2Lp8Rt5Wz1Yb4Nc6Md0Je7Hg3X"

    with pytest.raises(SendError) as failed:
        bot_for(tg, token=wrong).send_message(5123456789, "Добрый день!")

    assert not failed.value.retryable
    assert "401" in failed.value.reason and "Unauthorized" in failed.value.reason
    assert_no_token(failed.value, wrong)


def assert_no_token(exc: BaseException, token: str) -> None:
    texts = [str(exc), repr(exc), getattr(exc, "reason", "")]
    chained = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if chained is not None:
        texts += [str(chained), repr(chained)]
    for text in texts:
        assert token not in text
        assert token.split(":")[1] not in text


def test_a_send_without_an_answer_in_time_is_an_unknown_outcome_and_does_not_leak_the_token(
    tg: FakeTelegram,
) -> None:
    # The message went out and may have arrived: never blindly sent again (the client would get it twice).
    tg.fail_next("slow", delay_s=1.5)
    started = time.monotonic()

    with pytest.raises(UnknownOutcome) as failed:
        bot_for(tg, timeout_s=0.3).send_message(5123456789, "Добрый день!")

    assert time.monotonic() - started < 1.4
    assert not failed.value.retryable and "no answer in time" in failed.value.reason
    assert_no_token(failed.value, DEFAULT_TOKEN)


def test_a_read_only_call_without_an_answer_in_time_is_retryable(tg: FakeTelegram) -> None:
    tg.fail_next("slow", delay_s=1.5, method="getMe")

    with pytest.raises(SendError) as failed:
        bot_for(tg, timeout_s=0.3).get_me()

    assert not isinstance(failed.value, UnknownOutcome)
    assert failed.value.retryable and "read timeout" in failed.value.reason
    assert_no_token(failed.value, DEFAULT_TOKEN)


def test_connection_refused_is_retryable_and_does_not_leak_the_token() -> None:
    with FakeTelegram() as gone:
        url = gone.url

    with pytest.raises(SendError) as failed:
        TelegramBot(DEFAULT_TOKEN, base_url=url, timeout_s=2).send_message(1, "текст")

    assert failed.value.retryable and "connection failed" in failed.value.reason
    assert_no_token(failed.value, DEFAULT_TOKEN)


def test_repr_of_the_bot_does_not_show_the_token(tg: FakeTelegram) -> None:
    assert DEFAULT_TOKEN not in repr(bot_for(tg))


# --------------------------------------------------------------------------- sender


def test_sender_sends_an_outbound_message_with_its_options(tg: FakeTelegram) -> None:
    bot = bot_for(tg)
    card = bot.send_message(5123456789, "Сообщение клиента")
    sender = TelegramSender(bot)

    result = sender.send(
        outbound(
            "Запишу вас на субботу, 15:00?",
            reply_to_message_id=str(card),
            business_connection_id="AQAAAJ6YGbMBAAAA1n0cNw2R7kU",
            buttons=[[{"text": "Да", "callback_data": "confirm:L-0412"}]],
        )
    )

    last = tg.sent["5123456789"][-1]
    assert result.provider_message_id == str(last["message_id"])
    assert result.segments == 1
    assert last["reply_to_message"]["message_id"] == card
    assert last["business_connection_id"] == "AQAAAJ6YGbMBAAAA1n0cNw2R7kU"
    assert last["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "confirm:L-0412"
    assert sender.channel == "telegram"


def long_text() -> str:
    paragraph = (
        "Маникюр с покрытием гель-лаком — 2500 ₽, снятие старого покрытия — 300 ₽. "
        "Мастер Ольга работает в субботу с 10 до 20, свободно окно в 15:00. "
    ) * 6
    return "\n\n".join(f"{n}. {paragraph.strip()}" for n in range(1, 14))


def test_long_text_is_split_at_paragraphs_reply_on_first_buttons_on_last(tg: FakeTelegram) -> None:
    bot = bot_for(tg)
    quoted = bot.send_message(5123456789, "вопрос клиента")
    text = long_text()
    assert len(text) > 4096 * 2

    result = TelegramSender(bot).send(
        outbound(
            text, reply_to_message_id=str(quoted), buttons=[[{"text": "Записаться", "callback_data": "book"}]]
        )
    )

    parts = tg.sent["5123456789"][1:]
    assert result.segments == len(parts) == 4  # 13 paragraphs of ~900 characters: 4 fit in a message
    assert result.provider_message_id == str(parts[-1]["message_id"])
    assert all(len(p["text"]) <= 4096 for p in parts)
    assert all(p["text"].endswith("15:00.") for p in parts)  # every cut is at a paragraph end
    assert "\n\n".join(p["text"] for p in parts) == text
    assert parts[0]["reply_to_message"]["message_id"] == quoted
    assert all("reply_to_message" not in p for p in parts[1:])
    assert [("reply_markup" in p) for p in parts] == [False, False, False, True]


def test_split_parts_wait_out_the_per_chat_flood_limit(tg: FakeTelegram) -> None:
    tg.per_chat_limit = True
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    result = TelegramSender(bot_for(tg), sleep=sleep).send(outbound("А" * 5000))

    assert result.segments == 2
    assert [len(t) for t in tg.texts(5123456789)] == [4096, 904]
    assert waits == [1.0]


def test_first_part_rate_limit_goes_back_to_the_queue(tg: FakeTelegram) -> None:
    tg.fail_next("rate_limit", retry_after=2)

    with pytest.raises(SendError) as failed:
        TelegramSender(bot_for(tg), sleep=lambda s: pytest.fail("must not wait")).send(outbound("Привет"))

    assert failed.value.retryable and failed.value.retry_after == 2


def test_failure_after_a_sent_part_says_how_many_went_out(tg: FakeTelegram) -> None:
    bot = bot_for(tg)

    def block_after_first(seconds: float) -> None:  # never called: 403 is not waited out
        raise AssertionError

    sender = TelegramSender(bot, sleep=block_after_first)
    original = bot.send_message
    calls = 0

    def send_then_block(*args: Any, **kwargs: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            tg.fail_next("blocked")
        return original(*args, **kwargs)

    bot.send_message = send_then_block  # type: ignore[method-assign]

    with pytest.raises(SendError) as failed:
        sender.send(outbound(long_text()))

    assert not failed.value.retryable
    assert "after 1 of 4 parts" in failed.value.reason
    assert len(tg.sent["5123456789"]) == 1


def test_empty_text_is_refused_without_a_call(tg: FakeTelegram) -> None:
    with pytest.raises(SendError):
        TelegramSender(bot_for(tg)).send(outbound("  \n "))
    assert tg.requests == []


def test_sender_from_settings_reads_token_and_api_base(
    tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", tg.token)
    monkeypatch.setenv("TELEGRAM_API_BASE", tg.url)

    result = TelegramSender.from_settings().send(outbound("Добрый день!"))

    assert result.provider_message_id == str(tg.sent["5123456789"][0]["message_id"])


def test_sender_from_settings_without_a_token_refuses() -> None:
    with pytest.raises(SendError) as failed:
        TelegramSender.from_settings()
    assert not failed.value.retryable


# --------------------------------------------------------------------------- splitting


def telegram_parts(text: str) -> list[str]:
    """The parts TelegramSender.send cuts a text into (4096 UTF-16 units each)."""
    return split_text(text, MAX_TEXT_UTF16, utf16_len)


def test_split_prefers_sentences_when_there_are_no_paragraphs() -> None:
    sentence = "Запись на субботу возможна после 15:00, мастер подтвердит время. "
    text = sentence * 120

    parts = telegram_parts(text)

    assert len(parts) == 2
    assert parts[0].endswith("время.")
    assert " ".join(parts) == text.strip()


def test_split_counts_emoji_as_two_units_and_never_halves_them() -> None:
    text = "💅" * 3000  # 6000 UTF-16 units

    parts = telegram_parts(text)

    assert "".join(parts) == text
    assert [len(p.encode("utf-16-le")) // 2 for p in parts] == [4096, 1904]


def test_short_text_is_one_part() -> None:
    assert telegram_parts("  Добрый день!  ") == ["Добрый день!"]
    assert telegram_parts("") == []


@pytest.fixture
def invocation_ends_in():
    """The Lambda invocation's end, as the messenger sets it from the context."""
    from leadflow.adapters.channels import toolkit

    yield lambda seconds: toolkit.end_requests_by(time.time() + seconds)
    toolkit.end_requests_by(None)


def test_an_upload_answered_too_slowly_ends_before_the_invocation_does(
    tg: FakeTelegram, invocation_ends_in
) -> None:
    # A client's file goes up with a 40 s read timeout; score has 30 s. Cut off by the runtime,
    # nothing would be recorded: cut off here, it is an unknown outcome (never blindly sent twice).
    from leadflow.adapters.media import Blob

    tg.fail_next("slow", delay_s=6, method="sendPhoto")
    invocation_ends_in(4.5)
    started = time.monotonic()

    with pytest.raises(UnknownOutcome):
        bot_for(tg).send_file("sendPhoto", "photo", 5123456789, Blob(b"\xff\xd8jpeg", "image/jpeg", "a.jpg"))

    assert time.monotonic() - started < 4.0  # the invocation's 4.5 s less the margin, not 6 s or 40 s


def test_a_request_with_no_time_left_is_not_started_and_is_retried_later(
    tg: FakeTelegram, invocation_ends_in
) -> None:
    invocation_ends_in(2.5)

    with pytest.raises(SendError) as failed:
        bot_for(tg).send_message(5123456789, "Добрый день!")

    assert failed.value.retryable and not isinstance(failed.value, UnknownOutcome)
    assert "not started" in failed.value.reason
    assert tg.requests == []  # nothing left: the message may be sent again safely
