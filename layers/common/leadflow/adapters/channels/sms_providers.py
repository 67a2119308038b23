"""SMS provider adapters: SMS.ru, SMSC.ru and AWS End User Messaging SMS, behind one interface.

Every adapter takes its HTTP session (or boto3 client), base URL and credentials as constructor
arguments, so tests point it at a local fake. Errors become ``SendError``:
- insufficient balance, invalid number, rejected credentials or text → ``retryable=False``
  (the owner has to act; retrying cannot help);
- rate limits, 5xx, connection failures before the request was sent → ``retryable=True``;
- a read timeout (or a garbled answer) after the request went out → ``UnknownOutcome``: the
  message may have been sent, so the caller asks ``check_sent`` before it ever resends.
Error reasons hold provider codes only, never phone numbers or message texts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from leadflow.adapters.channels.base import SendError, UnknownOutcome
from leadflow.adapters.channels.toolkit import post
from leadflow.domain.sms import count_segments

if TYPE_CHECKING:
    import requests

    from leadflow.settings import Settings

DEFAULT_TIMEOUT = (3.05, 10.0)  # connect, read (seconds)


SmsStatusValue = Literal["delivered", "failed", "pending"]


@dataclass(frozen=True)
class SmsStatus:
    provider_message_id: str
    status: SmsStatusValue
    error: str | None = None  # provider's code, log-safe (never the phone or the text)


# SMS.ru delivery codes (sms/status and callbacks): 100-102 queued/in transit, 103 delivered,
# 104-108 and 150 not delivered, 110 read (Viber).
def smsru_status(code: int) -> SmsStatusValue:
    if code in (103, 110):
        return "delivered"
    if code in (104, 105, 106, 107, 108, 150) or code < 0:
        return "failed"
    return "pending"


# SMSC.ru status.php codes: -1 waiting, 0 at the operator, 1 delivered, 2 read, 4 link opened,
# 3 expired, 20 cannot be delivered, 22 bad number, 23 prohibited, 24 no money, 25 unavailable.
def smsc_status(code: int) -> SmsStatusValue:
    if code in (1, 2, 4):
        return "delivered"
    if code == 3 or code >= 20:
        return "failed"
    return "pending"


# AWS End User Messaging SMS event types (event destination → SNS).
_AWS_PENDING = {"TEXT_PENDING", "TEXT_QUEUED", "TEXT_SUCCESSFUL"}


def aws_status(event_type: str) -> SmsStatusValue:
    if event_type == "TEXT_DELIVERED":
        return "delivered"
    if event_type in _AWS_PENDING:
        return "pending"
    return "failed"


class ProviderCannotQuery(SendError):
    """The provider offers no lookup for this question (by our key, or by message id)."""

    def __init__(self, reason: str):
        super().__init__(reason, retryable=False)


@dataclass(frozen=True)
class ProviderResult:
    message_id: str
    status: str  # "pending" | "delivered" | "failed"
    cost: float | None = None
    segments: int | None = None
    balance: float | None = None


class SmsProvider(Protocol):
    name: str

    def send(
        self,
        phone_e164: str,
        text: str,
        *,
        sender: str | None,
        idempotency_key: str,
        promotional: bool = False,
    ) -> ProviderResult: ...

    def status(self, message_id: str, *, phone_e164: str | None = None) -> SmsStatus: ...

    def check_sent(self, idempotency_key: str, *, phone_e164: str | None = None) -> ProviderResult | None: ...


def _digits(phone_e164: str) -> str:
    return phone_e164.lstrip("+")


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class _HttpProvider:
    name = "http"

    def __init__(self, base_url: str, session: requests.Session | None, timeout: tuple[float, float]):
        self.base_url = base_url.rstrip("/")
        self._session = session
        self.timeout = timeout

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def _post(self, path: str, data: dict[str, Any], *, sending: bool) -> Any:
        """POST a form (credentials and text stay out of URLs and access logs) and decode JSON."""
        response = post(
            self.session,
            self.base_url + path,
            what=self.name,
            timeout=self.timeout,
            sending=sending,
            data=data,
        )
        if response.status_code == 429:
            retry_after = _float(response.headers.get("Retry-After"))
            raise SendError(f"{self.name}: http 429", retryable=True, retry_after=retry_after or 60.0)
        if response.status_code >= 500:
            raise SendError(f"{self.name}: http {response.status_code}", retryable=True)
        if response.status_code >= 400:
            raise SendError(f"{self.name}: http {response.status_code}", retryable=False)
        try:
            return response.json()
        except ValueError:
            if sending:
                raise UnknownOutcome(f"{self.name}: answer is not JSON, outcome unknown") from None
            raise SendError(f"{self.name}: answer is not JSON", retryable=True) from None


# --------------------------------------------------------------------------- SMS.ru

# https://sms.ru/api — status_code per request and per number.
_SMSRU_NOT_RETRYABLE = {
    200: "credentials rejected",
    201: "insufficient balance",
    202: "invalid number",
    203: "empty text",
    204: "sender name not approved",
    205: "text too long",
    207: "no route to number",
    209: "number in stop list",
    214: "foreign number not allowed",
    215: "number in sms.ru spam list",
    216: "forbidden word in text",
    300: "credentials rejected",
    301: "credentials rejected",
    302: "account not confirmed",
}
# Rate limits and temporary failures, with how long to wait before trying again.
_SMSRU_RETRYABLE = {
    206: ("daily limit reached", 3600.0),
    220: ("service temporarily unavailable", 60.0),
    230: ("daily limit for this number reached", 3600.0),
    231: ("rate limit: same text to this number per minute", 60.0),
    232: ("rate limit: same text to this number per day", 3600.0),
    233: ("rate limit: repeated messages to this number", 300.0),
    500: ("server error", 30.0),
}


def _smsru_error(code: int) -> SendError:
    if code in _SMSRU_RETRYABLE:
        reason, wait = _SMSRU_RETRYABLE[code]
        return SendError(f"smsru {code}: {reason}", retryable=True, retry_after=wait)
    return SendError(f"smsru {code}: {_SMSRU_NOT_RETRYABLE.get(code, 'rejected')}", retryable=False)


class SmsRuProvider(_HttpProvider):
    """SMS.ru JSON API (``json=1``). SMS.ru accepts no client-side message id, so a send cannot
    be looked up by our key: ``check_sent`` raises ``ProviderCannotQuery`` and the message is
    treated as possibly sent (no automatic resend — a lost SMS is cheaper than a double one)."""

    name = "smsru"
    DEFAULT_BASE = "https://sms.ru"

    def __init__(
        self,
        api_key: str,
        *,
        sender: str | None = None,
        base_url: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ):
        super().__init__(base_url or self.DEFAULT_BASE, session, timeout)
        self.api_key = api_key
        self.sender = sender

    def send(
        self,
        phone_e164: str,
        text: str,
        *,
        sender: str | None = None,
        idempotency_key: str,
        promotional: bool = False,
    ) -> ProviderResult:
        to = _digits(phone_e164)
        data: dict[str, Any] = {"api_id": self.api_key, "to": to, "msg": text, "json": 1}
        if sender or self.sender:
            data["from"] = sender or self.sender
        answer = self._post("/sms/send", data, sending=True)
        if not isinstance(answer, dict) or "status_code" not in answer:
            raise UnknownOutcome("smsru: unexpected answer, outcome unknown")
        if answer.get("status") != "OK":
            raise _smsru_error(_int(answer.get("status_code")) or 0)
        per_number = (answer.get("sms") or {}).get(to)
        if not isinstance(per_number, dict):
            raise UnknownOutcome("smsru: answer without this number, outcome unknown")
        if per_number.get("status") != "OK":
            raise _smsru_error(_int(per_number.get("status_code")) or 0)
        return ProviderResult(
            message_id=str(per_number["sms_id"]),
            status="pending",
            cost=_float(per_number.get("cost")),
            segments=_int(per_number.get("sms")) or count_segments(text).segments,
            balance=_float(answer.get("balance")),
        )

    def status(self, message_id: str, *, phone_e164: str | None = None) -> SmsStatus:
        answer = self._post(
            "/sms/status", {"api_id": self.api_key, "sms_id": message_id, "json": 1}, sending=False
        )
        if not isinstance(answer, dict) or answer.get("status") != "OK":
            raise _smsru_error(_int((answer or {}).get("status_code")) or 0)
        entry = (answer.get("sms") or {}).get(message_id) or {}
        code = _int(entry.get("status_code"))
        if code is None:
            raise SendError("smsru: status answer without this message", retryable=True)
        status = smsru_status(code)
        return SmsStatus(message_id, status, str(code) if status == "failed" else None)

    def check_sent(self, idempotency_key: str, *, phone_e164: str | None = None) -> ProviderResult | None:
        raise ProviderCannotQuery("smsru: sends cannot be looked up by our key; treat as possibly sent")


# --------------------------------------------------------------------------- SMSC.ru

# https://smsc.ru/api/http/ — error_code of send.php.
_SMSC_ERRORS: dict[int, tuple[str, bool, float | None]] = {
    1: ("bad parameters", False, None),
    2: ("credentials rejected", False, None),
    3: ("insufficient balance", False, None),
    4: ("ip temporarily blocked", True, 600.0),
    5: ("bad message id", False, None),
    6: ("message denied", False, None),
    7: ("invalid number", False, None),
    8: ("cannot deliver to number", False, None),
    9: ("rate limit: too many identical or concurrent requests", True, 60.0),
}


def _smsc_error(answer: dict[str, Any]) -> SendError:
    code = _int(answer.get("error_code")) or 0
    reason, retryable, wait = _SMSC_ERRORS.get(code, ("rejected", False, None))
    return SendError(f"smsc {code}: {reason}", retryable=retryable, retry_after=wait)


def smsc_message_id(idempotency_key: str) -> int:
    """SMSC accepts our own id as a 32-bit number 1…2147483647: derived from the key, stable.

    Lookups are by (phone, id), so a hash collision matters only for the same phone.
    """
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2_147_483_647 + 1


class SmscProvider(_HttpProvider):
    """SMSC.ru ``send.php`` / ``status.php`` with ``fmt=3`` (JSON). Our id goes in ``id``, so
    ``check_sent`` asks ``status.php`` for (phone, id); status -3 means SMSC has no such message."""

    name = "smsc"
    DEFAULT_BASE = "https://smsc.ru"

    def __init__(
        self,
        login: str,
        password: str,
        *,
        sender: str | None = None,
        base_url: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ):
        super().__init__(base_url or self.DEFAULT_BASE, session, timeout)
        self.login = login
        self.password = password
        self.sender = sender

    def _auth(self) -> dict[str, Any]:
        return {"login": self.login, "psw": self.password, "fmt": 3, "charset": "utf-8"}

    def send(
        self,
        phone_e164: str,
        text: str,
        *,
        sender: str | None = None,
        idempotency_key: str,
        promotional: bool = False,
    ) -> ProviderResult:
        message_id = smsc_message_id(idempotency_key)
        data = {**self._auth(), "phones": _digits(phone_e164), "mes": text, "cost": 3, "id": message_id}
        if sender or self.sender:
            data["sender"] = sender or self.sender
        answer = self._post("/sys/send.php", data, sending=True)
        if not isinstance(answer, dict):
            raise UnknownOutcome("smsc: unexpected answer, outcome unknown")
        if "error_code" in answer or "error" in answer:
            raise _smsc_error(answer)
        return ProviderResult(
            message_id=str(answer.get("id", message_id)),
            status="pending",
            cost=_float(answer.get("cost")),
            segments=_int(answer.get("cnt")) or count_segments(text).segments,
            balance=_float(answer.get("balance")),
        )

    def _status(self, message_id: str, phone_e164: str | None) -> dict[str, Any]:
        if not phone_e164:
            raise ValueError("smsc status.php needs the phone number with the id")
        data = {**self._auth(), "phone": _digits(phone_e164), "id": message_id, "all": 1}
        answer = self._post("/sys/status.php", data, sending=False)
        if not isinstance(answer, dict):
            raise SendError("smsc: unexpected status answer", retryable=True)
        if "error_code" in answer:
            raise _smsc_error(answer)
        return answer

    def status(self, message_id: str, *, phone_e164: str | None = None) -> SmsStatus:
        answer = self._status(message_id, phone_e164)
        code = _int(answer.get("status"))
        if code is None:
            raise SendError("smsc: status answer without status", retryable=True)
        status = smsc_status(code)
        error = str(answer.get("err") or code) if status == "failed" else None
        return SmsStatus(message_id, status, error)

    def check_sent(self, idempotency_key: str, *, phone_e164: str | None = None) -> ProviderResult | None:
        message_id = str(smsc_message_id(idempotency_key))
        answer = self._status(message_id, phone_e164)
        code = _int(answer.get("status"))
        if code is None or code == -3:  # -3: message not found
            return None
        return ProviderResult(
            message_id=message_id,
            status=smsc_status(code),
            cost=_float(answer.get("cost")),
            segments=_int(answer.get("sms_cnt")),
        )


# --------------------------------------------------------------------------- AWS


_AWS_RETRYABLE = {"ThrottlingException", "InternalServerException"}


class AwsSmsProvider:
    """AWS End User Messaging SMS (``pinpoint-sms-voice-v2`` ``SendTextMessage``).

    Our key travels in ``Context`` and comes back in delivery events, but the API has no lookup
    of a sent message: ``check_sent`` and ``status`` raise ``ProviderCannotQuery``; statuses arrive
    through the event destination (SNS → ``/webhooks/sms?provider=aws``). The client must not
    retry by itself (``make_sms_provider`` disables botocore retries): a retried read timeout
    would send twice.
    """

    name = "aws"

    def __init__(self, client: Any, *, sender: str | None = None, configuration_set: str | None = None):
        self.client = client
        self.sender = sender
        self.configuration_set = configuration_set

    def send(
        self,
        phone_e164: str,
        text: str,
        *,
        sender: str | None = None,
        idempotency_key: str,
        promotional: bool = False,
    ) -> ProviderResult:
        from botocore.exceptions import (
            ClientError,
            ConnectionError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        request: dict[str, Any] = {
            "DestinationPhoneNumber": phone_e164,
            "MessageBody": text,
            "MessageType": "PROMOTIONAL" if promotional else "TRANSACTIONAL",
            "Context": {"idempotency_key": idempotency_key},
        }
        if sender or self.sender:
            request["OriginationIdentity"] = sender or self.sender
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            answer = self.client.send_text_message(**request)
        except ReadTimeoutError:
            raise UnknownOutcome("aws: no answer in time, outcome unknown") from None
        except (ConnectTimeoutError, EndpointConnectionError, ConnectionError):
            raise SendError("aws: connection failed", retryable=True) from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            detail = exc.response.get("Reason") or error.get("Reason")
            reason = f"aws {code}" + (f": {detail}" if detail else "")
            if code == "ServiceQuotaExceededException":
                reason += " (spend limit or quota reached)"
            raise SendError(reason, retryable=code in _AWS_RETRYABLE) from None
        return ProviderResult(
            message_id=str(answer["MessageId"]), status="pending", segments=count_segments(text).segments
        )

    def status(self, message_id: str, *, phone_e164: str | None = None) -> SmsStatus:
        raise ProviderCannotQuery("aws: delivery status arrives through the event destination webhook")

    def check_sent(self, idempotency_key: str, *, phone_e164: str | None = None) -> ProviderResult | None:
        raise ProviderCannotQuery("aws: sends cannot be looked up; treat as possibly sent")


# --------------------------------------------------------------------------- factory


class SmsConfigError(ValueError):
    """SMS_PROVIDER names a provider whose credentials are missing, or an unknown provider."""


def make_sms_provider(
    settings: Settings, secret: Any, *, session: requests.Session | None = None, aws_client: Any = None
) -> SmsProvider | None:
    """The adapter SMS_PROVIDER names, from SMS_API_KEY / SMS_LOGIN / SMS_SENDER / SMS_API_BASE.

    None when SMS_PROVIDER is unset (the channel is off). SMSC uses SMS_LOGIN + SMS_API_KEY as
    its password; AWS needs no key (IAM role) and SMS_SENDER is the origination identity.
    """
    provider = settings.sms_provider
    if not provider:
        return None
    if provider == "smsru":
        api_key = secret("SMS_API_KEY")
        if not api_key:
            raise SmsConfigError("SMS_PROVIDER=smsru needs SMS_API_KEY")
        return SmsRuProvider(
            api_key, sender=settings.sms_sender, base_url=settings.sms_api_base, session=session
        )
    if provider == "smsc":
        login, password = secret("SMS_LOGIN"), secret("SMS_API_KEY")
        if not login or not password:
            raise SmsConfigError("SMS_PROVIDER=smsc needs SMS_LOGIN and SMS_API_KEY")
        return SmscProvider(
            login, password, sender=settings.sms_sender, base_url=settings.sms_api_base, session=session
        )
    if provider == "aws":
        if aws_client is None:
            import boto3
            from botocore.config import Config

            # Endpoint from AWS_ENDPOINT_URL(_PINPOINT_SMS_VOICE_V2) as everywhere; no retries
            # inside botocore (a retried timeout could double-send).
            aws_client = boto3.client(
                "pinpoint-sms-voice-v2",
                config=Config(retries={"total_max_attempts": 1}, connect_timeout=3, read_timeout=10),
            )
        return AwsSmsProvider(aws_client, sender=settings.sms_sender)
    raise SmsConfigError(f"unknown SMS_PROVIDER {provider!r} (smsru, smsc or aws)")
