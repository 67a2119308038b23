"""SMS channel: segments, opt-out, policy, provider adapters against local fakes, webhooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
import requests
from botocore.config import Config

from leadflow import clock
from leadflow.adapters.channels.base import SendError, WebhookError, WebhookRequest
from leadflow.adapters.channels.sms import SmsSender, handle_webhook
from leadflow.adapters.channels.sms_providers import (
    AwsSmsProvider,
    ProviderCannotQuery,
    SmsConfigError,
    SmscProvider,
    SmsRuProvider,
    SmsStatus,
    UnknownOutcome,
    make_sms_provider,
    smsc_message_id,
)
from leadflow.domain.models import OutboundMessage
from leadflow.domain.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    count_segments,
    fit_one_segment,
    is_opt_out,
    sms_policy,
)
from leadflow.settings import Settings, reset_caches
from tests.fakes.http import FakeServer, Request, Response
from tests.fakes.smsc_server import FakeSmsc
from tests.fakes.smsru_server import FakeSmsRu, smsru_callback_body
from tests.support import sns as fake_sns
from tests.support.sns import Certificates
from tests.support.webhooks import sent_now

EVENTS = Path(__file__).resolve().parents[4] / "events" / "sms"
EVENT_SECRET = "dev-sms-key"  # SMS.ru's api_id the sample's hash was made with
WEBHOOK_SECRET = "dev-sms-webhook-secret"  # the samples' SMS_WEBHOOK_SECRET
PHONE = "+79161234567"
FAST = (1.0, 0.5)  # connect, read: a slow fake answer becomes a client timeout


def outbound(text: str = "Здравствуйте! Запись подтверждена.", *, id: str = "out-1", kind: str = "reply"):
    return OutboundMessage(id=id, channel="sms", to=PHONE, lead_id="lead-1", kind=kind, text=text)


# --------------------------------------------------------------------------- segments


def test_alphabet_tables_are_the_gsm_03_38_ones():
    assert len(GSM7_BASIC) == 127  # 128 codes minus the escape
    assert len(GSM7_EXTENSION) == 10


@pytest.mark.parametrize(
    ("text", "encoding", "segments", "per_segment"),
    [
        ("a" * 160, "GSM-7", 1, 160),
        ("a" * 161, "GSM-7", 2, 153),
        ("a" * 306, "GSM-7", 2, 153),
        ("a" * 307, "GSM-7", 3, 153),
        ("€" * 80, "GSM-7", 1, 160),  # 80 extension chars = 160 septets
        ("€" * 80 + "a", "GSM-7", 2, 153),
        ("я" * 70, "UCS-2", 1, 70),
        ("я" * 71, "UCS-2", 2, 67),
        ("я" * 134, "UCS-2", 2, 67),
        ("я" * 135, "UCS-2", 3, 67),
        ("😀" * 35, "UCS-2", 1, 70),  # emoji are surrogate pairs: 2 units each
        ("😀" * 35 + "a", "UCS-2", 2, 67),
        ("Hello", "GSM-7", 1, 160),
        ("Привет", "UCS-2", 1, 70),
        ("", "GSM-7", 1, 160),
    ],
)
def test_count_segments(text, encoding, segments, per_segment):
    info = count_segments(text)
    assert (info.encoding, info.segments, info.chars_per_segment) == (encoding, segments, per_segment)


def test_one_cyrillic_letter_turns_a_latin_text_into_ucs2():
    assert count_segments("a" * 69 + "ж").segments == 1
    assert count_segments("a" * 70 + "ж").segments == 2


def test_extension_pair_is_never_split_across_parts():
    # 152 septets then a 2-septet "€": 154 > 153, so the euro sign opens part 2.
    info = count_segments("a" * 152 + "€" + "a" * 152)
    assert info.units == 306
    assert info.segments == 3  # naive ceil(306 / 153) would say 2


def test_surrogate_pair_is_never_split_across_parts():
    info = count_segments("я" * 66 + "😀" + "я" * 66)
    assert info.units == 134
    assert info.segments == 3  # naive ceil(134 / 67) would say 2


# --------------------------------------------------------------------------- fit_one_segment


def test_fit_one_segment_keeps_a_short_text():
    assert fit_one_segment("Ждём вас завтра в 10:00") == "Ждём вас завтра в 10:00"


def test_fit_one_segment_prefers_gsm_lookalikes_over_cutting():
    text = "Reminder: «Haircut» tomorrow at 10:00 — Salon Lotos, Lenina 5. " * 2
    assert count_segments(text).encoding == "UCS-2"
    fitted = fit_one_segment(text)
    assert count_segments(fitted).encoding == "GSM-7"
    assert count_segments(fitted).segments == 1
    assert '"Haircut"' in fitted and "-" in fitted


def test_fit_one_segment_cuts_at_a_word_and_marks_the_cut():
    text = "Напоминаем: завтра в 10:00 вы записаны на стрижку к мастеру Анне, салон Лотос, ул. Ленина 5."
    fitted = fit_one_segment(text)
    assert count_segments(fitted).segments == 1
    assert fitted.endswith("…")
    assert text.startswith(fitted[:-1])
    assert not fitted[:-1].endswith(" ")
    assert text[len(fitted) - 1] in " ,"  # cut on a word boundary; a dangling comma is dropped


# --------------------------------------------------------------------------- opt-out


@pytest.mark.parametrize(
    "text",
    [
        "СТОП",
        "стоп!!!",
        "Stop",
        " STOP. ",
        "отписаться",
        "Не пишите мне больше, спасибо",
        "не присылайте смс",
        "Стоп, не пишите",
        "Unsubscribe please",
        "Отпишите меня",
        "ХВАТИТ ПИСАТЬ",
    ],
)
def test_opt_out_messages(text):
    assert is_opt_out(text)


@pytest.mark.parametrize(
    "text",
    [
        "Стоп, а сколько стоит стрижка?",
        "Да",
        "Не пишите ерунду, я записывался на 10",
        "Отмена",
        "",
        "Нет",
        "stop motion фото можно?",
        "Остановка у салона какая?",
    ],
)
def test_not_opt_out(text):
    assert not is_opt_out(text)


# --------------------------------------------------------------------------- policy

MSK = ZoneInfo("Europe/Moscow")
QUIET = {"quiet_start": time(21, 0), "quiet_end": time(9, 0)}


def test_opted_out_refuses_even_a_reply():
    now = datetime(2026, 11, 25, 12, 0, tzinfo=MSK)
    decision = sms_policy("reply", opted_out=True, marketing_consent=True, now_local=now, **QUIET)
    assert (decision.action, decision.reason) == ("refuse", "opted out")


@pytest.mark.parametrize("kind", ["reply", "reminder", "missed_call"])
def test_transactional_goes_out_at_night_without_consent(kind):
    now = datetime(2026, 11, 25, 23, 30, tzinfo=MSK)
    decision = sms_policy(kind, opted_out=False, marketing_consent=False, now_local=now, **QUIET)
    assert decision.action == "send" and decision.send_at == now


@pytest.mark.parametrize("kind", ["winback", "nurture", "nudge"])
def test_marketing_needs_consent(kind):
    now = datetime(2026, 11, 25, 12, 0, tzinfo=MSK)
    refused = sms_policy(kind, opted_out=False, marketing_consent=False, now_local=now, **QUIET)
    allowed = sms_policy(kind, opted_out=False, marketing_consent=True, now_local=now, **QUIET)
    assert refused.action == "refuse" and refused.reason == "no marketing consent"
    assert allowed.action == "send"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 25, 23, 30, tzinfo=MSK), datetime(2026, 11, 26, 9, 0, tzinfo=MSK)),  # evening
        (
            datetime(2026, 11, 26, 2, 15, tzinfo=MSK),
            datetime(2026, 11, 26, 9, 0, tzinfo=MSK),
        ),  # after midnight
        (datetime(2026, 11, 25, 21, 0, tzinfo=MSK), datetime(2026, 11, 26, 9, 0, tzinfo=MSK)),  # at the start
    ],
)
def test_marketing_waits_for_the_end_of_a_window_crossing_midnight(now, expected):
    decision = sms_policy("winback", opted_out=False, marketing_consent=True, now_local=now, **QUIET)
    assert (decision.action, decision.send_at, decision.reason) == ("wait", expected, "quiet hours")


def test_marketing_at_the_end_of_quiet_hours_is_sent():
    now = datetime(2026, 11, 26, 9, 0, tzinfo=MSK)
    assert (
        sms_policy("nudge", opted_out=False, marketing_consent=True, now_local=now, **QUIET).action == "send"
    )


def test_daytime_quiet_window_and_no_window():
    lunch = {"quiet_start": time(13, 0), "quiet_end": time(14, 0)}
    now = datetime(2026, 11, 25, 13, 20, tzinfo=MSK)
    decision = sms_policy("nurture", opted_out=False, marketing_consent=True, now_local=now, **lunch)
    assert decision.send_at == datetime(2026, 11, 25, 14, 0, tzinfo=MSK)
    none = {"quiet_start": time(0, 0), "quiet_end": time(0, 0)}
    assert (
        sms_policy("nurture", opted_out=False, marketing_consent=True, now_local=now, **none).action == "send"
    )


def test_unknown_kind_is_refused():
    now = datetime(2026, 11, 25, 12, 0, tzinfo=MSK)
    assert (
        sms_policy("lottery", opted_out=False, marketing_consent=True, now_local=now, **QUIET).action
        == "refuse"
    )


# --------------------------------------------------------------------------- SMS.ru


@pytest.fixture
def smsru():
    fake = FakeSmsRu()
    with FakeServer(fake.route) as server:
        yield fake, SmsRuProvider(fake.api_id, sender="Lotos", base_url=server.url, timeout=FAST), server


def test_smsru_send_success(smsru):
    fake, provider, server = smsru
    result = SmsSender(provider).send(outbound("Здравствуйте! " * 6))  # 84 chars: 2 UCS-2 parts
    assert result.segments == 2 and result.cost == 5.0
    sent = fake.sent[result.provider_message_id]
    assert (sent.to, sent.sender, sent.text) == ("79161234567", "Lotos", "Здравствуйте! " * 6)
    assert fake.balance == 95.0
    request = server.requests[0]
    assert request.method == "POST" and "msg" not in request.query  # text stays out of the URL


def test_smsru_status_follows_delivery(smsru):
    fake, provider, _ = smsru
    sent = provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert provider.status(sent.message_id) == SmsStatus(sent.message_id, "pending")
    fake.deliver(sent.message_id, 103)
    assert provider.status(sent.message_id).status == "delivered"
    fake.deliver(sent.message_id, 104)
    assert provider.status(sent.message_id) == SmsStatus(sent.message_id, "failed", "104")


def test_smsru_insufficient_balance_is_not_retryable(smsru):
    fake, provider, _ = smsru
    fake.balance = 1.0
    with pytest.raises(SendError) as caught:
        SmsSender(provider).send(outbound())
    assert not caught.value.retryable and "insufficient balance" in caught.value.reason
    assert fake.sent == {}


def test_smsru_invalid_number_is_not_retryable(smsru):
    fake, provider, _ = smsru
    fake.invalid_numbers.add("79161234567")
    with pytest.raises(SendError) as caught:
        provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert not caught.value.retryable and "invalid number" in caught.value.reason
    assert "7916" not in caught.value.reason  # no phone in a reason that gets logged


def test_smsru_rate_limit_is_retryable_later(smsru):
    fake, provider, _ = smsru
    fake.rate_limited_numbers.add("79161234567")
    with pytest.raises(SendError) as caught:
        provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert caught.value.retryable and caught.value.retry_after == 60.0


def test_smsru_http_5xx_is_retryable(smsru):
    fake, provider, _ = smsru
    fake.http_status = 503
    with pytest.raises(SendError) as caught:
        provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert caught.value.retryable and not isinstance(caught.value, UnknownOutcome)


def test_smsru_wrong_key_is_not_retryable():
    fake = FakeSmsRu()
    with FakeServer(fake.route) as server:
        provider = SmsRuProvider("wrong", base_url=server.url, timeout=FAST)
        with pytest.raises(SendError) as caught:
            provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert not caught.value.retryable and "credentials" in caught.value.reason


def test_smsru_timeout_is_unknown_outcome_and_cannot_be_looked_up(smsru):
    fake, provider, _ = smsru
    fake.slow_s = 1.5
    sender = SmsSender(provider)
    with pytest.raises(UnknownOutcome):
        sender.send(outbound())
    assert len(fake.sent) == 1  # it did go out: a blind retry would have sent a second SMS
    with pytest.raises(ProviderCannotQuery) as caught:
        sender.confirm(outbound())
    assert not caught.value.retryable


def test_connection_refused_is_retryable():
    with FakeServer(lambda r: Response(200)) as server:
        url = server.url
    provider = SmsRuProvider("k", base_url=url, timeout=FAST)  # nothing listens there any more
    with pytest.raises(SendError) as caught:
        provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert caught.value.retryable and not isinstance(caught.value, UnknownOutcome)


# --------------------------------------------------------------------------- SMSC.ru


@pytest.fixture
def smsc():
    fake = FakeSmsc()
    with FakeServer(fake.route) as server:
        yield fake, SmscProvider(fake.login, fake.password, sender="Lotos", base_url=server.url, timeout=FAST)


def test_smsc_send_success_uses_our_id(smsc):
    fake, provider = smsc
    result = SmsSender(provider).send(outbound("Hello, see you at 10:00", id="out-42"))
    expected_id = smsc_message_id("out-42")
    assert result.provider_message_id == str(expected_id)
    assert (result.segments, result.cost) == (1, 3.1)
    message = fake.messages[("79161234567", expected_id)]
    assert (message.text, message.sender) == ("Hello, see you at 10:00", "Lotos")


def test_smsc_message_id_is_stable_and_in_range():
    ids = {smsc_message_id(f"out-{n}") for n in range(2000)}
    assert len(ids) == 2000
    assert all(1 <= i <= 2_147_483_647 for i in ids)
    assert smsc_message_id("out-1") == smsc_message_id("out-1")


def test_smsc_status(smsc):
    fake, provider = smsc
    sent = provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert provider.status(sent.message_id, phone_e164=PHONE).status == "pending"
    fake.set_status("79161234567", int(sent.message_id), 1)
    assert provider.status(sent.message_id, phone_e164=PHONE).status == "delivered"
    fake.set_status("79161234567", int(sent.message_id), 22)
    assert provider.status(sent.message_id, phone_e164=PHONE) == SmsStatus(sent.message_id, "failed", "22")


def test_smsc_insufficient_balance(smsc):
    fake, provider = smsc
    fake.balance = 0.5
    with pytest.raises(SendError) as caught:
        provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert not caught.value.retryable and caught.value.reason == "smsc 3: insufficient balance"


def test_smsc_invalid_number(smsc):
    fake, provider = smsc
    fake.invalid_numbers.add("79161234567")
    with pytest.raises(SendError) as caught:
        provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert not caught.value.retryable and caught.value.reason == "smsc 7: invalid number"


def test_smsc_rate_limit(smsc):
    fake, provider = smsc
    fake.rate_limited = True
    with pytest.raises(SendError) as caught:
        provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert caught.value.retryable and caught.value.retry_after == 60.0


def test_smsc_timeout_then_check_sent_finds_it_without_a_second_send(smsc):
    fake, provider = smsc
    fake.slow_s = 1.5
    sender = SmsSender(provider)
    message = outbound("Напоминаем о записи завтра в 10:00", id="out-7")
    with pytest.raises(UnknownOutcome):
        sender.send(message)
    found = sender.confirm(message)
    assert found is not None
    assert found.provider_message_id == str(smsc_message_id("out-7"))
    assert (found.segments, found.cost) == (1, 3.1)
    assert len(fake.messages) == 1


def test_smsc_check_sent_says_none_when_nothing_went_out(smsc):
    fake, provider = smsc
    assert provider.check_sent("never-sent", phone_e164=PHONE) is None
    assert fake.messages == {}


# --------------------------------------------------------------------------- AWS (JSON 1.0 wire format)


class FakeAwsSms:
    """pinpoint-sms-voice-v2 over its real protocol: POST /, X-Amz-Target, JSON 1.0 bodies."""

    def __init__(self):
        self.calls: list[dict[str, Any]] = []
        self.error: tuple[int, str, dict[str, Any]] | None = None
        self.slow_s = 0.0

    def route(self, request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        if target != "PinpointSMSVoiceV2.SendTextMessage":
            return Response(400, {"__type": "UnknownOperationException"})
        body = request.json()
        self.calls.append(body)
        if self.error:
            status, code, extra = self.error
            return Response(status, {"__type": code, "Message": "refused", **extra})
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        return Response(200, {"MessageId": f"msg-{len(self.calls)}"}, headers=headers, delay_s=self.slow_s)


@pytest.fixture
def aws():
    fake = FakeAwsSms()
    with FakeServer(fake.route) as server:
        client = boto3.client(
            "pinpoint-sms-voice-v2",
            endpoint_url=server.url,
            region_name="eu-central-1",
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=0.5),
        )
        yield fake, AwsSmsProvider(client, sender="+79037654321")


def test_aws_send_success(aws):
    fake, provider = aws
    result = SmsSender(provider).send(outbound("Ждём вас!", id="out-9", kind="winback"))
    assert result.provider_message_id == "msg-1" and result.segments == 1
    call = fake.calls[0]
    assert call["DestinationPhoneNumber"] == PHONE
    assert call["OriginationIdentity"] == "+79037654321"
    assert call["MessageType"] == "PROMOTIONAL"
    assert call["Context"] == {"idempotency_key": "out-9"}


def test_aws_reply_is_transactional(aws):
    fake, provider = aws
    SmsSender(provider).send(outbound(kind="reply"))
    assert fake.calls[0]["MessageType"] == "TRANSACTIONAL"


@pytest.mark.parametrize(
    ("status", "code", "extra", "retryable"),
    [
        (400, "ThrottlingException", {}, True),
        (500, "InternalServerException", {}, True),
        (400, "ValidationException", {"Reason": "INVALID_PARAMETER"}, False),
        (402, "ServiceQuotaExceededException", {"Reason": "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"}, False),
    ],
)
def test_aws_errors(aws, status, code, extra, retryable):
    fake, provider = aws
    fake.error = (status, code, extra)
    with pytest.raises(SendError) as caught:
        provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert caught.value.retryable is retryable
    assert code in caught.value.reason
    assert len(fake.calls) == 1  # botocore did not retry behind our back


def test_aws_timeout_is_unknown_outcome_and_not_resent(aws):
    fake, provider = aws
    fake.slow_s = 1.5
    with pytest.raises(UnknownOutcome):
        provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert len(fake.calls) == 1
    with pytest.raises(ProviderCannotQuery):
        provider.check_sent("k1", phone_e164=PHONE)


# --------------------------------------------------------------------------- sender and factory


def test_sender_refuses_an_invalid_phone_before_calling_the_provider(smsru):
    _, provider, server = smsru
    bad = OutboundMessage(id="x", channel="sms", to="+7123", kind="reply", text="Hi")
    with pytest.raises(SendError) as caught:
        SmsSender(provider).send(bad)
    assert not caught.value.retryable and server.requests == []


def test_factory_builds_each_provider(monkeypatch):
    secrets = {"SMS_API_KEY": "key", "SMS_LOGIN": "salon"}
    assert make_sms_provider(Settings(), secrets.get) is None
    smsru = make_sms_provider(Settings(sms_provider="smsru", sms_api_base="http://127.0.0.1:9"), secrets.get)
    assert isinstance(smsru, SmsRuProvider) and smsru.base_url == "http://127.0.0.1:9"
    smsc = make_sms_provider(Settings(sms_provider="smsc", sms_sender="Lotos"), secrets.get)
    assert isinstance(smsc, SmscProvider) and (smsc.login, smsc.password, smsc.sender) == (
        "salon",
        "key",
        "Lotos",
    )
    assert smsc.base_url == "https://smsc.ru"
    aws = make_sms_provider(Settings(sms_provider="aws"), secrets.get)
    assert isinstance(aws, AwsSmsProvider)
    assert aws.client.meta.config.retries["total_max_attempts"] == 1
    with pytest.raises(SmsConfigError):
        make_sms_provider(Settings(sms_provider="smsc"), {"SMS_API_KEY": "key"}.get)
    with pytest.raises(SmsConfigError):
        make_sms_provider(Settings(sms_provider="twilio"), secrets.get)


# --------------------------------------------------------------------------- webhooks


def request_from_event(name: str) -> WebhookRequest:
    event = sent_now(json.loads((EVENTS / name).read_text(encoding="utf-8")))
    return WebhookRequest(
        method=event["requestContext"]["http"]["method"],
        channel="sms",
        headers={k.lower(): v for k, v in event["headers"].items()},
        query=event.get("queryStringParameters") or {},
        body=event["body"].encode(),
        source_ip=event["requestContext"]["http"]["sourceIp"],
    )


def use_provider(monkeypatch, provider: str) -> None:
    monkeypatch.setenv("SMS_PROVIDER", provider)
    reset_caches()


@pytest.fixture
def event_secret(monkeypatch):
    """The secrets the samples were made with; SNS certificates from the tests' own key."""
    from leadflow.adapters.channels import sns

    monkeypatch.setenv("SMS_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("SMS_API_KEY", EVENT_SECRET)
    monkeypatch.setattr(sns, "_verifier", sns.SnsVerifier(Certificates()))
    clock.freeze(datetime(2026, 11, 25, 18, 31, tzinfo=UTC))  # when the samples were sent


def sample(monkeypatch, name: str):
    use_provider(monkeypatch, name.removesuffix(".json").rsplit("_", 1)[-1])
    return handle_webhook(request_from_event(name))


def test_inbound_da_from_smsc(event_secret, monkeypatch):
    result = sample(monkeypatch, "inbound_da_smsc.json")
    (message,) = result.messages
    assert (message.channel, message.chat_id, message.text) == ("sms", PHONE, "Да")
    assert message.message_id == "sms:smsc:51234"
    assert message.contact.phone == PHONE
    assert message.received_at == datetime.fromtimestamp(1795631395, tz=UTC)
    assert result.opt_outs == [] and result.status == 200


def test_inbound_stop_is_flagged_as_opt_out(event_secret, monkeypatch):
    result = sample(monkeypatch, "inbound_stop_smsc.json")
    assert result.messages[0].text == "СТОП"
    assert result.opt_outs == [PHONE]


def test_inbound_da_from_aws_sns(event_secret, monkeypatch):
    result = sample(monkeypatch, "inbound_da_aws.json")
    (message,) = result.messages
    assert message.message_id == "sms:aws:cae173d2-66b9-564c-8309-21f858e9fb84"
    assert (message.chat_id, message.text) == (PHONE, "Да")


def test_status_callbacks_are_not_leads(event_secret, monkeypatch):
    smsru = sample(monkeypatch, "status_smsru.json")
    assert smsru.messages == [] and smsru.body == "100"
    assert smsru.statuses == [
        SmsStatus("202611-10000001", "delivered"),
        SmsStatus("202611-10000002", "failed", "104"),
    ]
    assert smsru.note == "2 delivery status(es)"
    smsc = sample(monkeypatch, "status_smsc.json")
    assert smsc.statuses == [SmsStatus("1583042771", "delivered")]
    aws = sample(monkeypatch, "status_aws.json")  # SignatureVersion 2
    assert aws.statuses == [SmsStatus("f3a1c2d4-5b6e-4f70-8a91-b2c3d4e5f607", "delivered")]


def test_smsru_callback_signed_by_the_fake_helper(monkeypatch):
    monkeypatch.setenv("SMS_API_KEY", "real-key")
    monkeypatch.setenv("SMS_WEBHOOK_SECRET", WEBHOOK_SECRET)
    use_provider(monkeypatch, "smsru")
    body = smsru_callback_body("real-key", ["sms_status\n1-2\n102\n1795631460"])
    request = WebhookRequest("POST", "sms", {}, {"secret": WEBHOOK_SECRET}, body)
    assert handle_webhook(request).statuses == [SmsStatus("1-2", "pending")]


@pytest.mark.parametrize(
    "name", ["inbound_da_smsc.json", "status_smsru.json", "inbound_da_aws.json", "status_aws.json"]
)
@pytest.mark.parametrize("unset", ["SMS_WEBHOOK_SECRET", "SMS_PROVIDER"])
def test_every_provider_fails_closed_without_its_settings(event_secret, monkeypatch, name, unset):
    request = request_from_event(name)
    use_provider(monkeypatch, name.removesuffix(".json").rsplit("_", 1)[-1])
    monkeypatch.delenv(unset)
    reset_caches()
    with pytest.raises(WebhookError) as caught:
        handle_webhook(request)
    assert caught.value.status == 403


def test_item13_smsru_fails_closed_without_its_api_id(event_secret, monkeypatch):
    request = request_from_event("status_smsru.json")
    use_provider(monkeypatch, "smsru")
    monkeypatch.delenv("SMS_API_KEY")
    with pytest.raises(WebhookError) as caught:
        handle_webhook(request)
    assert caught.value.status == 403


@pytest.mark.parametrize("name", ["inbound_da_smsc.json", "status_smsru.json", "status_aws.json"])
@pytest.mark.parametrize("given", [EVENT_SECRET, "another-secret", None])
def test_item13_a_wrong_or_missing_webhook_secret_is_refused(event_secret, monkeypatch, name, given):
    request = request_from_event(name)
    use_provider(monkeypatch, name.removesuffix(".json").rsplit("_", 1)[-1])
    query = {} if given is None else {"secret": given}
    with pytest.raises(WebhookError) as caught:
        handle_webhook(WebhookRequest("POST", "sms", request.headers, query, request.body))
    assert caught.value.status == 403


def test_tampered_smsru_callback_is_refused(event_secret, monkeypatch):
    use_provider(monkeypatch, "smsru")
    request = request_from_event("status_smsru.json")
    forged = WebhookRequest("POST", "sms", {}, request.query, request.body.replace(b"104", b"103"))
    with pytest.raises(WebhookError) as caught:
        handle_webhook(forged)
    assert caught.value.status == 403


@pytest.mark.parametrize(("configured", "named"), [("smsru", "smsc"), ("aws", "smsc"), ("smsc", "aws")])
def test_item13_a_provider_parameter_other_than_sms_provider_is_refused(
    event_secret, monkeypatch, configured, named
):
    monkeypatch.setenv("SMS_API_KEY", WEBHOOK_SECRET)  # the old check (secret == SMS_API_KEY) passes
    use_provider(monkeypatch, configured)
    request = request_from_event("inbound_da_smsc.json")
    query = {"provider": named, "secret": WEBHOOK_SECRET}
    with pytest.raises(WebhookError) as caught:
        handle_webhook(WebhookRequest("POST", "sms", {}, query, request.body))
    assert caught.value.status == 403


def test_item13_an_unknown_sms_provider_refuses_everything(event_secret, monkeypatch):
    use_provider(monkeypatch, "twilio")
    with pytest.raises(WebhookError) as caught:
        handle_webhook(WebhookRequest("POST", "sms", {}, {"secret": WEBHOOK_SECRET}, b"id=1"))
    assert caught.value.status == 403


@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD"])
def test_item13_only_post_is_accepted(event_secret, monkeypatch, method):
    use_provider(monkeypatch, "smsc")
    query = {"secret": WEBHOOK_SECRET, "id": "1", "phone": "79161234567", "mes": "Да"}
    with pytest.raises(WebhookError) as caught:
        handle_webhook(WebhookRequest(method, "sms", {}, query, b""))
    assert caught.value.status == 405


@pytest.mark.parametrize(
    ("provider", "body", "status"),
    [
        ("smsc", b"foo=bar", 400),
        ("smsc", b"id=1&phone=abc&mes=hi", 400),
        ("smsc", b"\xff\xfe", 400),
        ("aws", b"not json", 400),
        ("aws", b'{"Type": "Dance"}', 400),
        ("aws", b'{"Type": "Notification", "Message": "[]"}', 403),  # unsigned
    ],
)
def test_malformed_callbacks_get_a_4xx(event_secret, monkeypatch, provider, body, status):
    use_provider(monkeypatch, provider)
    with pytest.raises(WebhookError) as caught:
        handle_webhook(WebhookRequest("POST", "sms", {}, {"secret": WEBHOOK_SECRET}, body))
    assert caught.value.status == status


def test_a_signed_sns_message_that_is_no_sms_event_is_400(event_secret, monkeypatch):
    use_provider(monkeypatch, "aws")
    message = fake_sns.signed(fake_sns.notification("[]", at=clock.wall_now()))
    body = json.dumps(message).encode()
    with pytest.raises(WebhookError) as caught:
        handle_webhook(WebhookRequest("POST", "sms", {}, {"secret": WEBHOOK_SECRET}, body))
    assert caught.value.status == 400


def test_sns_subscription_confirmation_is_acknowledged(event_secret, monkeypatch):
    use_provider(monkeypatch, "aws")
    confirmation = fake_sns.signed({
        "Type": "SubscriptionConfirmation", "MessageId": "m-1", "Token": "t", "TopicArn": fake_sns.TOPIC_ARN,
        "Message": "You have chosen to subscribe", "SubscribeURL": "https://sns.example/confirm",
        "Timestamp": "2026-11-25T18:30:30.000Z",
    })  # fmt: skip
    result = handle_webhook(
        WebhookRequest("POST", "sms", {}, {"secret": WEBHOOK_SECRET}, json.dumps(confirmation).encode())
    )
    assert result.status == 200 and result.messages == [] and "subscription" in (result.note or "")


def test_requests_session_is_used_when_given(smsru):
    fake, _, server = smsru
    session = requests.Session()
    session.headers["X-Test"] = "1"
    provider = SmsRuProvider(fake.api_id, base_url=server.url, session=session, timeout=FAST)
    provider.send(PHONE, "Hi", sender=None, idempotency_key="k1")
    assert server.requests[-1].headers.get("x-test") == "1"
