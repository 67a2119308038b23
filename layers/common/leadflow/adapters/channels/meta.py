"""What WhatsApp Cloud API and Instagram Messaging share: Meta's webhook handshake, the payload
signature, and the Graph API client with its error mapping.

Webhook answers (both channels):

- GET ``?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`` → 200 with the challenge as
  ``text/plain`` when the token equals ``META_VERIFY_TOKEN``; 403 otherwise or when it is unset.
- POST: ``X-Hub-Signature-256: sha256=<hex>`` is HMAC-SHA256 of the raw body with
  ``META_APP_SECRET``. Missing, malformed or not matching, or the secret unset → 403, the one status
  every channel refuses with. The signature is checked on the bytes as
  received, before any JSON parsing, so a body a proxy re-serialised no longer verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from leadflow.adapters.channels.base import (
    SendError,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    require_secret,
)
from leadflow.adapters.channels.toolkit import post
from leadflow.domain.phones import to_e164

if TYPE_CHECKING:
    import requests

SIGNATURE_HEADER = "X-Hub-Signature-256"
DEFAULT_GRAPH_BASE = "https://graph.facebook.com/v21.0"

# Graph API error codes by what the caller should do about them.
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80007, 130429, 131048, 131056})
TRANSIENT_CODES = frozenset({1, 2, 131000, 131016, 133004})
OUTSIDE_WINDOW_CODES = frozenset({131047})
# Instagram/Messenger report the closed 24-hour window as code 10 with one of these subcodes.
OUTSIDE_WINDOW_SUBCODES = frozenset({2018278, 2534022})


class OutsideWindow(SendError):
    """The client's 24-hour window is closed: send a template or use another channel instead."""

    def __init__(self, reason: str):
        super().__init__(reason, retryable=False)


# --------------------------------------------------------------------------- webhook


def handle_subscription(request: WebhookRequest) -> WebhookResult:
    """Meta's GET handshake when the webhook URL is registered."""
    require_secret(_secret("META_VERIFY_TOKEN"), request.query.get("hub.verify_token"), "META_VERIFY_TOKEN")
    if request.query.get("hub.mode") != "subscribe":
        raise WebhookError(403, "hub.mode is not 'subscribe'")
    challenge = request.query.get("hub.challenge")
    if not challenge:
        raise WebhookError(400, "hub.challenge is missing")
    return WebhookResult(status=200, body=challenge)


def verify_meta_signature(body: bytes, header: str | None, app_secret: str | None) -> None:
    """Raise ``WebhookError`` unless ``header`` is the HMAC-SHA256 of exactly these bytes."""
    if not app_secret:
        raise WebhookError(403, "META_APP_SECRET is not configured: channel refuses all requests")
    if not header:
        raise WebhookError(403, f"{SIGNATURE_HEADER} is missing")
    scheme, _, given = header.strip().partition("=")
    if scheme.lower() != "sha256" or not re.fullmatch(r"[0-9a-fA-F]{64}", given):
        raise WebhookError(403, f"{SIGNATURE_HEADER} is malformed")
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise WebhookError(403, f"{SIGNATURE_HEADER} does not match the body")


def sign_meta_body(body: bytes, app_secret: str) -> str:
    """The header value Meta would send for ``body`` (the local stack and tests sign their own requests)."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verified_payload(request: WebhookRequest) -> dict[str, Any]:
    """The JSON object of a signed POST; the signature is checked before the body is parsed."""
    verify_meta_signature(request.body, request.header(SIGNATURE_HEADER), _secret("META_APP_SECRET"))
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookError(400, "body is not a JSON object")
    return payload


def route_meta_webhook(
    request: WebhookRequest, parse: Callable[[dict[str, Any]], WebhookResult]
) -> WebhookResult:
    if request.method.upper() == "GET":
        return handle_subscription(request)
    if request.method.upper() != "POST":
        raise WebhookError(405, f"method {request.method} is not accepted")
    return parse(verified_payload(request))


def _secret(name: str) -> str | None:
    from leadflow.settings import secret

    return secret(name)


def utc_from_seconds(timestamp: int | float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def summarise(skipped: dict[str, int]) -> str | None:
    """A log-safe note such as ``"status update: 2, reaction: 1"`` (counts only, never contents)."""
    counted = [f"{what}: {count}" for what, count in skipped.items() if count]
    return ", ".join(counted) or None


def normalise_phone(digits: str | None) -> str | None:
    """WhatsApp's ``from`` ("79161234567") as E.164, or None when it is not a possible number."""
    return to_e164(digits, region=None, strict=False, platform=True)


# --------------------------------------------------------------------------- Graph API client


class GraphApi:
    """A small Graph API client: POST JSON with a bearer token, map error bodies to ``SendError``.

    The token travels in the Authorization header, never in the URL, so no exception text or
    log line that quotes a URL can carry it.
    """

    def __init__(
        self,
        token: str,
        session: requests.Session | None = None,
        base_url: str = DEFAULT_GRAPH_BASE,
        *,
        timeout_s: float = 10.0,
        product: str = "graph",
    ):
        if session is None:
            import requests

            session = requests.Session()
        self._token = token
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._product = product

    def __repr__(self) -> str:
        return f"GraphApi(base_url={self.base_url!r})"

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = post(
            self._session,
            f"{self.base_url}/{path.lstrip('/')}",
            what=self._product,
            timeout=self._timeout_s,
            json=payload,
            headers={"Authorization": f"Bearer {self._token}"},
        )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code < 300 and isinstance(answer, dict) and "error" not in answer:
            return answer
        raise graph_send_error(
            response.status_code, answer, response.headers.get("Retry-After"), product=self._product
        )

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET a Graph object (a media's URL); failures as ``SendError`` like a send's."""
        import requests

        try:
            response = self._session.get(
                f"{self.base_url}/{path.lstrip('/')}",
                params=params or {},
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._timeout_s,
            )
        except requests.RequestException as exc:
            raise SendError(
                f"{self._product}: request failed ({type(exc).__name__})", retryable=True
            ) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code < 300 and isinstance(answer, dict) and "error" not in answer:
            return answer
        raise graph_send_error(
            response.status_code, answer, response.headers.get("Retry-After"), product=self._product
        )

    @property
    def session(self) -> Any:
        return self._session

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}


def graph_send_error(
    status: int, answer: Any, retry_after_header: str | None = None, *, product: str = "graph"
) -> SendError:
    """Map a Graph API failure (``{"error": {"message","type","code","error_subcode","fbtrace_id"}}``)."""
    retry_after = _seconds(retry_after_header)
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        retryable = status >= 500 or status == 429
        return SendError(f"{product}: HTTP {status} without a Graph API error", retryable=retryable)
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    reason = (
        f"{product}: error {code}"
        + (f"/{subcode}" if subcode is not None else "")
        + f" ({error.get('type') or 'unknown type'}): {mask_digits(str(error.get('message') or ''))[:200]}"
        + (f" [fbtrace_id {error['fbtrace_id']}]" if error.get("fbtrace_id") else "")
    )
    if code in OUTSIDE_WINDOW_CODES or (code == 10 and subcode in OUTSIDE_WINDOW_SUBCODES):
        return OutsideWindow(reason)
    if code in RATE_LIMIT_CODES or status == 429:
        return SendError(reason, retryable=True, retry_after=retry_after)
    if code in TRANSIENT_CODES or (status >= 500 and code != 190):
        return SendError(reason, retryable=True, retry_after=retry_after)
    return SendError(reason, retryable=False)


def mask_digits(text: str) -> str:
    """Error messages sometimes quote the recipient's number: no run of 9+ digits survives.

    Error codes (at most 7 digits, such as 2018278) stay readable.
    """
    return _PHONE_LIKE.sub("•••", text)


_PHONE_LIKE = re.compile(r"\+?\d(?:[ \-()]*\d){8,}")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- text splitting
