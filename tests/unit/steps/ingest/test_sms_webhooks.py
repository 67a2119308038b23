"""SMS provider callbacks through the ingest handler: who may post them, and how.

Trust issue, item 13: the SMS webhook rested on a query-string secret that was the SMSC account
password, let the caller pick the provider with ``?provider=``, took SNS messages without
checking their signature, and took GET requests with the phone and the text in the URL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from leadflow import clock
from leadflow.settings import reset_caches
from leadflow_local.stack import api_gateway_event
from tests.fakes.smsru_server import smsru_callback_body
from tests.support import sns as fake_sns
from tests.support.webhooks import SOURCE_IP, ingest, post

NOW = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)
HOOK_SECRET = "hook-secret-0123456789"
SMSC_PASSWORD = "smsc-account-password"
SMSRU_API_ID = "smsru-api-id-0123"
FORM = {"content-type": "application/x-www-form-urlencoded"}
INBOUND = urlencode({"id": "51234", "phone": "79161234567", "mes": "Да", "to": "79037654321"}).encode()


@pytest.fixture
def sms(env, monkeypatch):
    """An SMS channel: SMS_WEBHOOK_SECRET set, the provider chosen by the test."""
    clock.freeze(NOW)
    monkeypatch.setenv("SMS_WEBHOOK_SECRET", HOOK_SECRET)

    def provider(name: str) -> None:
        monkeypatch.setenv("SMS_PROVIDER", name)
        monkeypatch.setenv("SMS_LOGIN", "salon")
        monkeypatch.setenv("SMS_API_KEY", SMSC_PASSWORD if name == "smsc" else SMSRU_API_ID)
        reset_caches()

    return provider


@pytest.fixture
def certificates(monkeypatch) -> fake_sns.Certificates:
    from leadflow.adapters.channels import sns

    fetch = fake_sns.Certificates()
    monkeypatch.setattr(sns, "_verifier", sns.SnsVerifier(fetch))
    return fetch


def _as_before(monkeypatch) -> None:
    """SMS_API_KEY equal to the webhook secret: the old check (``?secret=`` == SMS_API_KEY) passes,
    so what refuses the request here can only be the new rule the test is about."""
    monkeypatch.setenv("SMS_API_KEY", HOOK_SECRET)
    reset_caches()


def _sms(body: bytes, query: str, headers: dict | None = None, method: str = "POST") -> dict:
    event = post("sms", body, headers or FORM, query)
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = f"{method} /webhooks/{{channel}}"
    return ingest(event)


# --------------------------------------------------------------------------- the secret


def test_item13_the_smsc_password_no_longer_opens_the_webhook(sms, env, logs):
    # Given SMSC configured: its account password is SMS_API_KEY, the webhook has its own secret
    sms("smsc")
    # When a callback carries the SMSC password in the URL, as it had to before
    assert _sms(INBOUND, urlencode({"secret": SMSC_PASSWORD}))["status"] == 403
    assert env.receive("ScoreQueue") == []
    # Then it is refused; with the webhook's own secret it is taken
    assert _sms(INBOUND, urlencode({"secret": HOOK_SECRET}))["status"] == 200
    assert len(env.receive("ScoreQueue")) == 1


def test_item13_without_sms_webhook_secret_every_callback_is_refused(sms, env, logs, monkeypatch):
    sms("smsc")
    monkeypatch.delenv("SMS_WEBHOOK_SECRET")
    reset_caches()
    for secret in (SMSC_PASSWORD, HOOK_SECRET, ""):
        assert _sms(INBOUND, urlencode({"secret": secret}))["status"] == 403
    assert env.receive("ScoreQueue") == []


# --------------------------------------------------------------------------- the provider


def test_item13_the_provider_is_sms_provider_not_the_callers_choice(sms, env, logs):
    # Given a stack that sends through SMS.ru
    sms("smsru")
    # When a request names SMSC (whose callbacks carry no signature of their own)
    answer = _sms(INBOUND, urlencode({"provider": "smsc", "secret": HOOK_SECRET}))
    # Then it is refused, and nothing is queued
    assert answer["status"] == 403
    assert env.receive("ScoreQueue") == []
    assert "SMS_PROVIDER" in logs.text


def test_item13_a_provider_parameter_that_agrees_is_accepted(sms, env, logs):
    sms("smsc")
    assert _sms(INBOUND, urlencode({"provider": "smsc", "secret": HOOK_SECRET}))["status"] == 200


def test_item13_without_sms_provider_every_callback_is_refused(sms, env, logs, monkeypatch):
    sms("smsc")
    _as_before(monkeypatch)
    monkeypatch.delenv("SMS_PROVIDER")
    reset_caches()
    assert _sms(INBOUND, urlencode({"provider": "smsc", "secret": HOOK_SECRET}))["status"] == 403


# --------------------------------------------------------------------------- POST only


def test_item13_a_get_with_phone_and_text_in_the_url_is_405(sms, env, logs):
    sms("smsc")
    query = urlencode({"secret": HOOK_SECRET, "id": "51234", "phone": "79161234567", "mes": "Да"})
    event = api_gateway_event("GET", "/webhooks/sms", query, {}, b"", SOURCE_IP)
    assert ingest(event)["status"] == 405
    assert env.receive("ScoreQueue") == []


# --------------------------------------------------------------------------- sms.ru


def test_item13_smsru_needs_the_url_secret_as_well_as_its_hash(sms, env, logs):
    sms("smsru")
    body = smsru_callback_body(SMSRU_API_ID, ["sms_status\n202611-1\n103\n1773460800"])
    # its own hash alone is not enough…
    assert _sms(body, "")["status"] == 403
    # …nor the secret with a hash made with another api_id…
    forged = smsru_callback_body("someone-else", ["sms_status\n202611-1\n103\n1773460800"])
    assert _sms(forged, urlencode({"secret": HOOK_SECRET}))["status"] == 403
    assert env.receive("RouteQueue") == []
    # …both are: answered "100", as SMS.ru requires
    answer = _sms(body, urlencode({"secret": HOOK_SECRET}))
    assert (answer["status"], answer["body"]) == (200, "100")
    assert len(env.receive("RouteQueue")) == 1


# --------------------------------------------------------------------------- SNS (aws)


def _sns(message: dict) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode()


INBOUND_SNS = json.dumps({"originationNumber": "+79161234567", "destinationNumber": "+79037654321",
                          "messageBody": "Да", "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84"})  # fmt: skip
SNS_HEADERS = {"content-type": "text/plain; charset=UTF-8"}
AWS_QUERY = urlencode({"provider": "aws", "secret": HOOK_SECRET})  # provider= agrees with SMS_PROVIDER


@pytest.mark.parametrize("version", ["1", "2"])
def test_item13_an_sns_message_signed_by_sns_is_taken(sms, env, logs, certificates, version):
    sms("aws")
    message = fake_sns.signed(fake_sns.notification(INBOUND_SNS, at=NOW), version=version)
    answer = _sms(_sns(message), AWS_QUERY, SNS_HEADERS)
    assert answer["status"] == 200
    assert len(env.receive("ScoreQueue")) == 1
    assert certificates.fetched == [fake_sns.CERT_URL]


def test_item13_an_sns_message_with_a_bad_signature_is_refused(sms, env, logs, certificates, monkeypatch):
    # Given a message as SNS signed it, whose text was then changed
    sms("aws")
    _as_before(monkeypatch)
    message = fake_sns.signed(fake_sns.notification(INBOUND_SNS, at=NOW))
    forged = {**message, "Message": INBOUND_SNS.replace("+79161234567", "+79990000000")}
    assert forged["Message"] != message["Message"]
    # Then it is refused, even with the webhook's secret
    assert _sms(_sns(forged), AWS_QUERY, SNS_HEADERS)["status"] == 403
    # and so is one signed by a key of our own making
    other = fake_sns.signed(fake_sns.notification(INBOUND_SNS, at=NOW), key=fake_sns.make_signing_key())
    assert _sms(_sns(other), AWS_QUERY, SNS_HEADERS)["status"] == 403
    assert env.receive("ScoreQueue") == []


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://sns.eu-central-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.eu-central-1.amazonaws.com/cert.pem",
        "http://sns.eu-central-1.amazonaws.com/SimpleNotificationService-example.pem",
        "https://sns.eu-central-1.amazonaws.com:8443/SimpleNotificationService-example.pem",
        "https://user@sns.eu-central-1.amazonaws.com/SimpleNotificationService-example.pem",
        "https://s3.amazonaws.com/SimpleNotificationService-example.pem",
    ],
)
def test_item13_a_certificate_from_anywhere_but_sns_is_never_fetched(
    sms, env, logs, certificates, monkeypatch, cert_url
):
    sms("aws")
    _as_before(monkeypatch)
    certificates.by_url[cert_url] = fake_sns.signing_key().pem
    message = fake_sns.signed(fake_sns.notification(INBOUND_SNS, at=NOW), cert_url=cert_url)
    assert _sms(_sns(message), AWS_QUERY, SNS_HEADERS)["status"] == 403
    assert certificates.fetched == []


def test_item13_the_certificate_is_fetched_once_per_url(sms, env, logs, certificates):
    sms("aws")
    for n in range(3):
        message = fake_sns.signed(fake_sns.notification(INBOUND_SNS, at=NOW, message_id=f"m-{n}"))
        assert _sms(_sns(message), AWS_QUERY, SNS_HEADERS)["status"] == 200
    assert certificates.fetched == [fake_sns.CERT_URL]


def test_item13_an_old_sns_message_is_refused(sms, env, logs, certificates, monkeypatch):
    sms("aws")
    _as_before(monkeypatch)
    message = fake_sns.signed(fake_sns.notification(INBOUND_SNS, at=NOW - timedelta(days=3)))
    assert _sms(_sns(message), AWS_QUERY, SNS_HEADERS)["status"] == 403
    assert env.receive("ScoreQueue") == []


def test_item13_an_sns_subscription_confirmation_is_checked_too(sms, env, logs, certificates, monkeypatch):
    sms("aws")
    confirmation = {
        "Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37", "TopicArn": fake_sns.TOPIC_ARN,
        "Message": "You have chosen to subscribe to the topic …",
        "SubscribeURL": "https://sns.eu-central-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37",
        "Timestamp": "2026-03-14T03:59:00.000Z",
    }  # fmt: skip
    good = fake_sns.signed(confirmation, version="2")
    assert _sms(_sns(good), AWS_QUERY, SNS_HEADERS)["status"] == 200
    assert '"note":"sns subscription confirmation' in logs.text
    _as_before(monkeypatch)
    forged = {**good, "SubscribeURL": "https://evil.example/confirm"}
    assert _sms(_sns(forged), AWS_QUERY, SNS_HEADERS)["status"] == 403


def test_item13_an_unreachable_certificate_is_a_503_for_sns_to_retry(sms, env, logs, monkeypatch):
    from leadflow.adapters.channels import sns

    def unreachable(url: str) -> bytes:
        raise sns.CertificateUnavailable("connect timeout")

    monkeypatch.setattr(sns, "_verifier", sns.SnsVerifier(unreachable))
    sms("aws")
    message = fake_sns.signed(fake_sns.notification(INBOUND_SNS, at=NOW))
    assert _sms(_sns(message), AWS_QUERY, SNS_HEADERS)["status"] == 503
    assert env.receive("ScoreQueue") == []
