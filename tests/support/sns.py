"""Amazon SNS as the tests play it: a locally made signing certificate and key, messages signed
with them as SNS signs (SignatureVersion 1 = SHA1withRSA, 2 = SHA256withRSA), and a certificate
"download" that counts its calls. The ``cryptography`` package is a test dependency only."""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.x509.oid import NameOID

CERT_URL = "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-example.pem"
TOPIC_ARN = "arn:aws:sns:eu-central-1:123456789012:leadflow-sms"
# The fields SNS signs, in this (byte) order, per message type (AWS: verify-signature-of-message).
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}  # fmt: skip


@dataclass(frozen=True)
class SigningKey:
    key: RSAPrivateKey
    pem: bytes


def make_signing_key(bits: int = 2048) -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return SigningKey(key, certificate.public_bytes(serialization.Encoding.PEM))


@functools.cache
def signing_key() -> SigningKey:
    """One key per test run (RSA key generation takes a while)."""
    return make_signing_key()


def string_to_sign(message: dict[str, Any]) -> bytes:
    names = SIGNED_FIELDS[message["Type"]]
    return "".join(f"{n}\n{message[n]}\n" for n in names if message.get(n) is not None).encode()


def signed(message: dict[str, Any], *, version: str = "1", key: SigningKey | None = None,
           cert_url: str = CERT_URL) -> dict[str, Any]:  # fmt: skip
    """``message`` as SNS would post it: SignatureVersion, SigningCertURL and Signature set."""
    message = {**message, "SignatureVersion": version, "SigningCertURL": cert_url}
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1 is SHA1withRSA
    signature = (key or signing_key()).key.sign(string_to_sign(message), padding.PKCS1v15(), algorithm)
    return {**message, "Signature": base64.b64encode(signature).decode()}


def notification(payload: str, *, at: datetime, message_id: str = "d6d4e1a2-0001", **extra: Any) -> dict:
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC_ARN,
        "Message": payload,
        "Timestamp": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "UnsubscribeURL": "https://sns.eu-central-1.amazonaws.com/?Action=Unsubscribe",
        **extra,
    }


@dataclass
class Certificates:
    """What the HTTPS download of a signing certificate returns here: the PEM of known URLs."""

    by_url: dict[str, bytes] = field(default_factory=lambda: {CERT_URL: signing_key().pem})
    fetched: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> bytes:
        from leadflow.adapters.channels.sns import CertificateNotFound

        self.fetched.append(url)
        if url not in self.by_url:
            raise CertificateNotFound(url)
        return self.by_url[url]
