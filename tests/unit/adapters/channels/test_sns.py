"""SNS message signatures (Trust issue, item 13): our small RSA check against ``cryptography``'s
keys and signatures, the certificate URL rule, the certificate download and its cache."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.oid import NameOID

from leadflow import clock
from leadflow.adapters.channels import sns
from leadflow.adapters.channels.base import WebhookError
from tests.fakes.http import FakeServer, Response
from tests.support import sns as fake_sns

NOW = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _now() -> None:
    clock.freeze(NOW)


def verifier(**by_url: bytes) -> tuple[sns.SnsVerifier, fake_sns.Certificates]:
    certificates = fake_sns.Certificates()
    certificates.by_url.update(by_url)
    return sns.SnsVerifier(certificates), certificates


def message(**extra: object) -> dict:
    return fake_sns.notification('{"originationNumber": "+79161234567"}', at=NOW, **extra)


def refused(check: sns.SnsVerifier, signed: dict) -> int:
    with pytest.raises(WebhookError) as caught:
        check.verify(signed)
    return caught.value.status


# --------------------------------------------------------------------------- the certificate's key


def test_the_public_key_read_from_the_certificate_is_cryptographys():
    key = fake_sns.signing_key()
    numbers = key.key.public_key().public_numbers()
    assert sns.rsa_public_key_of_certificate(key.pem) == (numbers.n, numbers.e)


def test_an_ec_certificate_is_no_rsa_key():
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
        .serial_number(1).not_valid_before(NOW).not_valid_after(NOW + timedelta(days=1))
        .sign(private, hashes.SHA256())
    )  # fmt: skip
    with pytest.raises(ValueError, match="not an RSA key"):
        sns.rsa_public_key_of_certificate(certificate.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----",
        b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----",
        b"-----BEGIN CERTIFICATE-----\n"
        + base64.b64encode(b"\x30\x82\xff\xff\x02")
        + b"\n-----END CERTIFICATE-----",
        b"x" * 20_000,
    ],
)
def test_garbage_is_no_certificate(pem):
    with pytest.raises(ValueError):
        sns.rsa_public_key_of_certificate(pem)


# --------------------------------------------------------------------------- RSA PKCS#1 v1.5


@pytest.mark.parametrize(("hash_name", "algorithm"), [("sha1", hashes.SHA1()), ("sha256", hashes.SHA256())])  # noqa: S303
def test_cryptographys_signatures_verify_and_nothing_else_does(hash_name, algorithm):
    key = fake_sns.signing_key().key
    n, e = key.public_key().public_numbers().n, key.public_key().public_numbers().e
    data = b"Message\nhello\n"
    signature = key.sign(data, padding.PKCS1v15(), algorithm)
    digest = hashlib.new(hash_name, data).digest()
    assert sns.rsa_pkcs1v15_verify(n, e, signature, hash_name, digest)
    assert not sns.rsa_pkcs1v15_verify(n, e, signature, hash_name, hashlib.new(hash_name, b"other").digest())
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not sns.rsa_pkcs1v15_verify(n, e, flipped, hash_name, digest)
    assert not sns.rsa_pkcs1v15_verify(n, e, signature[1:], hash_name, digest)
    other = "sha256" if hash_name == "sha1" else "sha1"
    assert not sns.rsa_pkcs1v15_verify(n, e, signature, other, hashlib.new(other, data).digest())


def test_a_short_key_is_not_trusted():
    weak = fake_sns.make_signing_key(bits=1024)
    check, _ = verifier(**{fake_sns.CERT_URL: weak.pem})
    assert refused(check, fake_sns.signed(message(), key=weak)) == 403


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_message_signed_by_sns_passes(version):
    check, _ = verifier()
    check.verify(fake_sns.signed(message(), version=version))
    check.verify(fake_sns.signed(message(Subject="Inbound SMS"), version=version))


@pytest.mark.parametrize(
    "change",
    [
        {"Message": "{}"},
        {"MessageId": "another"},
        {"TopicArn": "arn:aws:sns:eu-central-1:999999999999:theirs"},
        {"Timestamp": "2026-03-14T03:59:59.000Z"},
        {"Subject": "added after signing"},
        {"SignatureVersion": "2"},
        {"SignatureVersion": "3"},
        {"Signature": "bm90IGEgc2lnbmF0dXJl"},
        {"Signature": "***"},
    ],
)
def test_any_change_after_signing_is_refused(change):
    check, _ = verifier()
    assert refused(check, {**fake_sns.signed(message()), **change}) == 403


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-abc.pem", True),
        ("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem", True),
        ("https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-abc.txt", False),
        ("https://sns.eu-central-1.amazonaws.com.evil.example/x.pem", False),
        ("https://SNS.eu-central-1.amazonaws.com:443/x.pem", False),
        ("https://sns.eu-central-1.amazonaws.com@evil.example/x.pem", False),
        ("https://sns.amazonaws.com/x.pem", False),
        ("http://sns.eu-central-1.amazonaws.com/x.pem", False),
        ("https://[::1]/x.pem", False),
        ("not a url", False),
    ],
)
def test_only_sns_hosts_over_https_serve_certificates(url, ok):
    assert sns.is_sns_certificate_url(url) is ok


def test_an_old_or_future_message_is_refused_even_when_signed():
    check, _ = verifier()
    old = fake_sns.signed(fake_sns.notification("{}", at=NOW - timedelta(hours=25)))
    ahead = fake_sns.signed(fake_sns.notification("{}", at=NOW + timedelta(minutes=20)))
    assert refused(check, old) == 403 and refused(check, ahead) == 403
    check.verify(fake_sns.signed(fake_sns.notification("{}", at=NOW - timedelta(hours=23))))


def test_a_message_without_a_signed_field_is_400():
    signed = fake_sns.signed(message())
    del signed["MessageId"]
    check, _ = verifier()
    assert refused(check, signed) == 400


# --------------------------------------------------------------------------- the download


def test_a_certificate_is_fetched_once_and_a_failed_fetch_is_not_remembered():
    calls: list[str] = []

    def flaky(url: str) -> bytes:
        calls.append(url)
        if len(calls) == 1:
            raise sns.CertificateUnavailable("timeout")
        return fake_sns.signing_key().pem

    check = sns.SnsVerifier(flaky)
    signed = fake_sns.signed(message())
    assert refused(check, signed) == 503
    check.verify(signed)
    check.verify(signed)
    assert calls == [fake_sns.CERT_URL, fake_sns.CERT_URL]


def test_a_certificate_that_is_not_there_is_a_403():
    check = sns.SnsVerifier(fake_sns.Certificates(by_url={}))
    assert refused(check, fake_sns.signed(message())) == 403


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (Response(404, "no such key"), sns.CertificateNotFound),
        (Response(302, b"", {"Location": "https://evil.example/x.pem"}), sns.CertificateNotFound),
        (Response(503, "slow down"), sns.CertificateUnavailable),
    ],
)
def test_the_download_tells_missing_from_unavailable(answer, raised):
    with FakeServer(lambda request: answer) as server, pytest.raises(raised):
        sns.fetch_certificate(f"{server.url}/SimpleNotificationService-x.pem")


def test_the_download_returns_the_pem():
    pem = fake_sns.signing_key().pem
    with FakeServer(lambda request: Response(200, pem)) as server:
        assert sns.fetch_certificate(f"{server.url}/SimpleNotificationService-x.pem") == pem


def test_a_refused_connection_is_unavailable():
    with pytest.raises(sns.CertificateUnavailable):
        sns.fetch_certificate("http://127.0.0.1:9/SimpleNotificationService-x.pem")
