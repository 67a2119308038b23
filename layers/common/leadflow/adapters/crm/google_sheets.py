"""Google Sheets API v4 over REST: a service account's access token and the three value calls
leadflow needs (``values.get``, ``values:append``, ``values:batchUpdate``).

The token: a JWT (RS256, the claims of Google's service-account flow) signed with the key from
GOOGLE_SERVICE_ACCOUNT_JSON, exchanged at the token endpoint (``jwt-bearer`` grant) and kept until
a minute before it expires. Signing uses ``cryptography`` (PKCS#8 key, PKCS#1 v1.5, SHA-256).
google-auth does the same on top of the same library; measured on this machine it costs ~38 ms
of import against ~13 ms for ``cryptography`` alone (requests already loaded), ships no transport
of its own, and would send the token request outside the session, timeouts and request budget
every other call here goes through. See SHEETS.md.

Every request asks the shared request budget first (the project's 60 writes and 60 reads a
minute per user; the service account is one user). A 429 drains the budget and is retryable, so
the work goes back through the queue; a 401 drops the cached token and is sent once more; 400,
403 and 404 are the owner's setup (range, sharing, id) and are not retried.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from leadflow.adapters.rate_limit import RateLimited, RateLimiter

log = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/spreadsheets"
# The JWT's audience is Google's token endpoint whatever URL the request goes to (google-auth
# hard-codes it too), so a stand-in token server sees exactly what Google would.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME_S = 3600
TOKEN_EARLY_S = 60  # a token is renewed this long before Google says it expires
_ROW = re.compile(r"![A-Z]+(\d+)")


class SheetsError(Exception):
    """A request that failed. The message never holds a token, a key or a cell's contents."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, reason: str = ""):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    private_key: str
    private_key_id: str | None = None

    @classmethod
    def from_json(cls, text: str) -> ServiceAccount:
        """The key file as Google hands it out (IAM → Service accounts → Keys → JSON)."""
        try:
            info = json.loads(text)
        except ValueError:
            raise SheetsError(
                "GOOGLE_SERVICE_ACCOUNT_JSON is not JSON: paste the whole key file", retryable=False
            ) from None
        if not isinstance(info, dict) or info.get("type", "service_account") != "service_account":
            raise SheetsError("GOOGLE_SERVICE_ACCOUNT_JSON is not a service account key", retryable=False)
        email, key = info.get("client_email"), info.get("private_key")
        if not isinstance(email, str) or not isinstance(key, str) or "PRIVATE KEY" not in key:
            raise SheetsError(
                "GOOGLE_SERVICE_ACCOUNT_JSON lacks client_email or private_key", retryable=False
            )
        key_id = info.get("private_key_id")
        return cls(email, key, key_id if isinstance(key_id, str) else None)


class ServiceAccountToken:
    """An access token for the service account, fetched when missing or about to expire."""

    def __init__(
        self,
        key_json: str,
        token_url: str,
        session: requests.Session,
        *,
        timeout_s: float = 10,
        clock: Callable[[], float] = time.time,
    ):
        self._key_json = key_json
        self._account: ServiceAccount | None = None
        self.token_url = token_url
        self._session = session
        self.timeout_s = timeout_s
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.fetched = 0

    @property
    def account(self) -> ServiceAccount:
        """The key, read on first use: a broken secret is refused per lead (seniors are told)."""
        if self._account is None:
            self._account = ServiceAccount.from_json(self._key_json)
        return self._account

    @property
    def email(self) -> str:
        try:
            return self.account.client_email
        except SheetsError:
            return "сервисного аккаунта (ключ не читается)"

    def assertion(self, now: float) -> str:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        header: dict[str, str] = {"alg": "RS256", "typ": "JWT"}
        if self.account.private_key_id:
            header["kid"] = self.account.private_key_id
        claims = {
            "iss": self.account.client_email,
            "scope": SCOPE,
            "aud": GOOGLE_TOKEN_AUDIENCE,
            "iat": int(now),
            "exp": int(now) + TOKEN_LIFETIME_S,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        try:
            key = serialization.load_pem_private_key(self.account.private_key.encode(), password=None)
        except (ValueError, TypeError):
            raise SheetsError(
                "GOOGLE_SERVICE_ACCOUNT_JSON: private_key is not a PEM RSA key", retryable=False
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SheetsError("GOOGLE_SERVICE_ACCOUNT_JSON: private_key is not an RSA key", retryable=False)
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def get(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token and now < self._expires_at - TOKEN_EARLY_S:
                return self._token
            self._token, self._expires_at = self._fetch(now)
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self, now: float) -> tuple[str, float]:
        data = {"grant_type": JWT_GRANT, "assertion": self.assertion(now)}
        try:
            response = self._session.post(self.token_url, data=data, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise SheetsError(f"token: {type(exc).__name__}", retryable=True) from None
        self.fetched += 1
        body = _json(response)
        token = body.get("access_token") if response.status_code == 200 else None
        if isinstance(token, str) and token:
            expires_in = body.get("expires_in")
            lifetime = float(expires_in) if isinstance(expires_in, int | float) else TOKEN_LIFETIME_S
            return token, now + lifetime
        error = str(body.get("error") or f"HTTP {response.status_code}")
        detail = str(body.get("error_description") or "")[:200]
        # invalid_grant/invalid_client/unauthorized_client: the key (or clock) is wrong, not Google.
        retryable = response.status_code >= 500 or response.status_code == 429
        log.warning("google token refused: status=%s error=%s", response.status_code, error)
        raise SheetsError(
            f"Google не выдал токен сервисному аккаунту {self.account.client_email}: {error} {detail}".strip(),
            retryable=retryable,
            status=response.status_code,
            reason=error,
        )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def a1(sheet: str, cells: str = "") -> str:
    """``'Лиды'!A1``: the sheet name always quoted (Cyrillic, spaces), a quote in it doubled."""
    quoted = "'" + sheet.replace("'", "''") + "'"
    return f"{quoted}!{cells}" if cells else quoted


def row_of(updated_range: str) -> int | None:
    """The first row number of an A1 range (``'Лиды'!A42:M42`` → 42)."""
    found = _ROW.search(updated_range or "")
    return int(found.group(1)) if found else None


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


class SheetsClient:
    """The session, the token source and the request budget come from the caller (wiring)."""

    def __init__(
        self,
        api_base: str,
        token: ServiceAccountToken,
        session: requests.Session,
        limiter: RateLimiter,
        *,
        timeout_s: float = 10,
    ):
        self._base = api_base.rstrip("/") + "/v4/spreadsheets/"
        self.token = token
        self._session = session
        self.limiter = limiter
        self.timeout_s = timeout_s
        self.requests_sent = 0

    def _request(
        self, method: str, path: str, *, params: Any = None, body: Any = None, what: str
    ) -> dict[str, Any]:
        for attempt in (1, 2):
            try:
                self.limiter.acquire()
            except RateLimited as exc:
                raise SheetsError(f"{what}: {exc.description}", retryable=True, reason=exc.code) from None
            headers = {"Authorization": f"Bearer {self.token.get()}"}
            self.requests_sent += 1
            try:
                response = self._session.request(
                    method,
                    self._base + path,
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=self.timeout_s,
                )
            except requests.Timeout:
                raise SheetsError(f"{what}: no answer in {self.timeout_s}s", retryable=True) from None
            except requests.RequestException as exc:
                raise SheetsError(f"{what}: {type(exc).__name__}", retryable=True) from None
            status = response.status_code
            if status == 200:
                return _json(response)
            if status == 401 and attempt == 1:
                self.token.invalidate()  # expired or revoked early: one more try with a fresh token
                continue
            error = _json(response).get("error")
            error = error if isinstance(error, dict) else {}
            message = str(error.get("message") or f"HTTP {status}")[:300]
            reason = str(error.get("status") or "")
            if status == 429:
                self.limiter.drain()
            log.warning("sheets %s failed: status=%s %s", what, status, reason or "-")
            raise SheetsError(
                f"{what}: {status} {reason} {message}".strip(),
                retryable=status == 429 or status >= 500,
                status=status,
                reason=reason,
            )
        raise AssertionError("unreachable")

    def get_values(self, spreadsheet_id: str, cells: str) -> list[list[Any]]:
        body = self._request("GET", f"{spreadsheet_id}/values/{quote(cells, safe='')}", what="values.get")
        values = body.get("values")
        return values if isinstance(values, list) else []  # an empty range has no "values" at all

    def append(self, spreadsheet_id: str, cells: str, rows: list[list[Any]]) -> str:
        """Rows after the table in ``cells`` (RAW: a client's «=…» stays text); the updated range."""
        body = self._request(
            "POST",
            f"{spreadsheet_id}/values/{quote(cells, safe='')}:append",
            params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
            body={"range": cells, "majorDimension": "ROWS", "values": rows},
            what="values.append",
        )
        updates = body.get("updates")
        return str(updates.get("updatedRange") or "") if isinstance(updates, dict) else ""

    def batch_update(self, spreadsheet_id: str, data: list[tuple[str, list[list[Any]]]]) -> int:
        """Write cells (RAW) in one request; the number of cells updated."""
        body = self._request(
            "POST",
            f"{spreadsheet_id}/values:batchUpdate",
            body={
                "valueInputOption": "RAW",
                "data": [{"range": cells, "majorDimension": "ROWS", "values": rows} for cells, rows in data],
            },
            what="values.batchUpdate",
        )
        return int(body.get("totalUpdatedCells") or 0)
