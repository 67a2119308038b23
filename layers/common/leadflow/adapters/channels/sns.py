"""Amazon SNS message signatures, for messages SNS posts to an HTTPS subscription (``aws`` SMS).

What is checked (AWS: "Verifying the signatures of Amazon SNS messages"):

- ``SigningCertURL`` is ``https://sns.<region>.amazonaws.com[.cn]/….pem`` — no other scheme, host,
  port or user part — and the certificate is fetched from there over HTTPS, the server's TLS
  certificate verified: that download is what vouches for the key, as in AWS's own SDK
  validators (the certificate's chain is not walked). Keys are kept per URL for the process.
- ``Signature`` is RSASSA-PKCS1-v1_5 over the message's signed fields (``name\\nvalue\\n`` in byte
  order, per message type) with SHA-1 (``SignatureVersion`` 1) or SHA-256 (2).
- ``Timestamp`` is at most ``MAX_AGE`` old (SNS retries keep the first Timestamp and MessageId,
  and ingest drops a redelivery by its id) and at most ``MAX_AHEAD`` in the future.

Why no crypto library: the Lambda runtime has none (boto3 and botocore bring no RSA), and adding
``cryptography`` to ingest would add megabytes for one verification. An RSA signature check is
small and exact: ``pow(signature, e, n)`` must be byte for byte the PKCS#1 v1.5 encoding of the
digest we compute ourselves (RFC 8017 §8.2.2, "encode and compare" — nothing of the signature is
parsed, which is where such checks usually go wrong). Reading (n, e) out of the certificate needs
a few DER steps. The tests check this against ``cryptography`` (a test dependency only).

A message that fails a check gets 403; a certificate that cannot be fetched (timeout, 5xx) 503,
so SNS delivers the message again later.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from leadflow import clock
from leadflow.adapters.channels.base import WebhookError

MAX_AGE = timedelta(hours=24)
MAX_AHEAD = timedelta(minutes=15)
MAX_CERT_BYTES = 16_384
CERT_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}  # fmt: skip
OPTIONAL_FIELDS = {"Subject"}
HASHES = {"1": "sha1", "2": "sha256"}
# DER of DigestInfo up to the digest (RFC 8017 §9.2, note 1).
DIGEST_INFO = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
}
RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")  # OID 1.2.840.113549.1.1.1


class CertificateNotFound(Exception):
    """SNS's host has no certificate at that URL (4xx): the message cannot be genuine."""


class CertificateUnavailable(Exception):
    """The certificate could not be fetched now (timeout, connection, 5xx): worth a retry."""


def fetch_certificate(url: str) -> bytes:
    """The PEM at ``url``, over HTTPS with the server certificate verified; no redirects."""
    import requests

    try:
        response = requests.get(url, timeout=(2, 3), allow_redirects=False)
    except requests.RequestException as exc:
        raise CertificateUnavailable(type(exc).__name__) from None
    if response.status_code >= 500:
        raise CertificateUnavailable(f"http {response.status_code}")
    if response.status_code != 200:  # 4xx, or a redirect (SNS's hosts serve certificates in place)
        raise CertificateNotFound(f"http {response.status_code}")
    return bytes(response.content[: MAX_CERT_BYTES + 1])


class SnsVerifier:
    """Checks SNS messages; ``fetch`` downloads a certificate (tests hand in their own)."""

    def __init__(self, fetch: Callable[[str], bytes] = fetch_certificate, cache_size: int = 16):
        self._fetch = fetch
        self._public_key = functools.lru_cache(maxsize=cache_size)(self._load_public_key)

    def verify(self, message: Mapping[str, Any]) -> None:
        """Raises WebhookError: 400 for a message that is not one, 403 for a wrong one, 503."""
        kind = message.get("Type")
        names = SIGNED_FIELDS.get(kind) if isinstance(kind, str) else None
        if names is None:
            raise WebhookError(400, "unsupported sns message type")
        hash_name = HASHES.get(str(message.get("SignatureVersion")))
        if hash_name is None:
            raise WebhookError(403, "sns SignatureVersion is neither 1 nor 2")
        url = message.get("SigningCertURL")
        if not isinstance(url, str) or not is_sns_certificate_url(url):
            raise WebhookError(
                403, "sns SigningCertURL is not an https://sns.<region>.amazonaws.com/ address"
            )
        try:
            signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
        except ValueError:
            raise WebhookError(403, "sns Signature is not base64") from None
        n, e = self._public_key(url)
        digest = hashlib.new(hash_name, string_to_sign(message, names)).digest()
        if not rsa_pkcs1v15_verify(n, e, signature, hash_name, digest):
            raise WebhookError(403, "sns Signature does not match")
        _require_fresh(message.get("Timestamp"))

    def _load_public_key(self, url: str) -> tuple[int, int]:
        try:
            pem = self._fetch(url)
        except CertificateNotFound:
            raise WebhookError(403, "sns signing certificate not found at SigningCertURL") from None
        except CertificateUnavailable:
            raise WebhookError(503, "sns signing certificate could not be fetched; try again") from None
        try:
            return rsa_public_key_of_certificate(pem)
        except ValueError as exc:
            raise WebhookError(403, f"sns signing certificate unreadable: {exc}") from None


_verifier: SnsVerifier | None = None


def verifier() -> SnsVerifier:
    """The process's verifier: certificates stay cached across invocations of a warm Lambda."""
    global _verifier
    if _verifier is None:
        _verifier = SnsVerifier()
    return _verifier


def is_sns_certificate_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and port is None
        and parts.username is None
        and parts.password is None
        and CERT_HOST.fullmatch(parts.hostname or "") is not None
        and "@" not in parts.netloc
        and parts.path.endswith(".pem")
    )


def string_to_sign(message: Mapping[str, Any], names: tuple[str, ...]) -> bytes:
    parts = []
    for name in names:
        value = message.get(name)
        if value is None:
            if name in OPTIONAL_FIELDS:
                continue
            raise WebhookError(400, f"sns message without {name}")
        if not isinstance(value, str):
            raise WebhookError(400, f"sns {name} is not a string")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8")


def _require_fresh(timestamp: Any) -> None:
    try:
        sent = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        raise WebhookError(400, "sns Timestamp is not ISO 8601") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    age = clock.wall_now() - sent
    if age > MAX_AGE:
        raise WebhookError(403, f"sns Timestamp is {int(age.total_seconds() // 3600)} h old")
    if -age > MAX_AHEAD:
        raise WebhookError(403, f"sns Timestamp is {int(-age.total_seconds() // 60)} min ahead")


# --------------------------------------------------------------------------- RSA


def rsa_pkcs1v15_verify(n: int, e: int, signature: bytes, hash_name: str, digest: bytes) -> bool:
    """RFC 8017 §8.2.2: ``signature^e mod n`` must equal EMSA-PKCS1-v1_5(digest), byte for byte."""
    k = (n.bit_length() + 7) // 8
    t = DIGEST_INFO[hash_name] + digest
    if k < 256 or len(signature) != k or k < len(t) + 11:  # 2048-bit keys at least
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    encoded = pow(s, e, n).to_bytes(k, "big")
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(encoded, expected)


def rsa_public_key_of_certificate(pem: bytes) -> tuple[int, int]:
    """(modulus, exponent) of the RSA key in a PEM X.509 certificate; ValueError otherwise.

    Certificate = SEQUENCE { tbsCertificate SEQUENCE { [0] version?, serialNumber, signature,
    issuer, validity, subject, subjectPublicKeyInfo, … }, … }; subjectPublicKeyInfo = SEQUENCE {
    SEQUENCE { rsaEncryption, NULL }, BIT STRING { SEQUENCE { n INTEGER, e INTEGER } } }.
    """
    if len(pem) > MAX_CERT_BYTES:
        raise ValueError("certificate too large")
    match = re.search(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", pem, re.S)
    if match is None:
        raise ValueError("no PEM certificate")
    try:
        der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
    except ValueError:
        raise ValueError("PEM is not base64") from None
    certificate = _children(_only(der, 0x30))
    if not certificate or certificate[0][0] != 0x30:
        raise ValueError("not an X.509 certificate")
    tbs = _children(certificate[0][1])
    fields = tbs[1:] if tbs and tbs[0][0] == 0xA0 else tbs  # skip [0] EXPLICIT version
    if len(fields) < 6:
        raise ValueError("not an X.509 certificate")
    spki_tag, spki = fields[5]
    if spki_tag != 0x30:
        raise ValueError("no subjectPublicKeyInfo")
    (algorithm_tag, algorithm), (key_tag, key_bits) = _children(spki)[:2]
    algorithm_fields = _children(algorithm) if algorithm_tag == 0x30 else []
    if not algorithm_fields or algorithm_fields[0] != (0x06, RSA_ENCRYPTION):
        raise ValueError("not an RSA key")
    if key_tag != 0x03 or not key_bits or key_bits[0] != 0:
        raise ValueError("malformed public key")
    numbers = _children(_only(key_bits[1:], 0x30))
    if len(numbers) != 2 or any(tag != 0x02 for tag, _ in numbers):
        raise ValueError("malformed RSA public key")
    n, e = (int.from_bytes(value, "big") for _, value in numbers)
    if n <= 0 or e < 3 or e % 2 == 0:
        raise ValueError("implausible RSA public key")
    return n, e


def _tlv(data: bytes, at: int) -> tuple[int, bytes, int]:
    """The DER element at ``at``: (tag, value, end)."""
    if at + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        size = length & 0x7F
        if not 1 <= size <= 4 or at + size > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[at : at + size], "big")
        at += size
    if at + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[at : at + length], at + length


def _children(data: bytes) -> list[tuple[int, bytes]]:
    found, at = [], 0
    while at < len(data):
        tag, value, at = _tlv(data, at)
        found.append((tag, value))
    return found


def _only(data: bytes, tag: int) -> bytes:
    found, value, end = _tlv(data, 0)
    if found != tag or end != len(data):
        raise ValueError("unexpected DER structure")
    return value
