"""Google's OAuth token endpoint and the Sheets API v4 values methods, in memory, on 127.0.0.1: the
stand-in the tests (tests/fakes/google_sheets_server.py) and `leadflow demo --crm sheets` run.

``with GoogleSheets() as google:`` → ``google.url`` serves both:
- ``POST /token`` (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``): the
  JWT's RS256 signature is checked against the service account's public key, its claims as Google
  documents them (iss = the account, aud = https://oauth2.googleapis.com/token, scope, exp at most
  an hour after iat, iat not in the future). Answer ``{"access_token", "expires_in": 3599,
  "token_type": "Bearer"}``; a bad one gets 400 ``{"error": "invalid_grant", "error_description": …}``.
- ``GET /v4/spreadsheets/{id}/values/{range}``, ``POST …/values/{range}:append``
  (``valueInputOption`` required, ``insertDataOption``), ``POST …/values:batchUpdate``, with A1
  ranges (``'Лиды'!A1``, ``'Лиды'!1:1``, ``'Лиды'!M2:M``, ``'Лиды'!G42``). Reads trim trailing empty
  rows and cells and leave ``values`` out when nothing is there; ``null`` cells are skipped.
- Errors in Google's envelope ``{"error": {"code", "message", "status"}}``: 401 UNAUTHENTICATED
  (no or unknown token), 403 PERMISSION_DENIED (the sheet is not shared with the account), 404
  NOT_FOUND (no such spreadsheet), 400 INVALID_ARGUMENT («Unable to parse range: …»), and 429
  RESOURCE_EXHAUSTED when an account's reads or writes pass ``reads_per_minute`` /
  ``writes_per_minute`` (60 each by default, Google's per-user quota).
- Faults: ``fail_next`` (a status for the next request), ``lose_next_answer`` (the next request is
  carried out and its answer arrives too late for the client).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from leadflow_local.standin_http import FakeServer, Request, Response

TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/spreadsheets"
_A1 = re.compile(r"^(?:([A-Z]*)(\d*))(?::([A-Z]*)(\d*))?$")
_KEY: rsa.RSAPrivateKey | None = None


def _test_key() -> rsa.RSAPrivateKey:
    global _KEY
    if _KEY is None:
        _KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEY


def service_account_json(email: str = "leadflow@salon-project.iam.gserviceaccount.com") -> str:
    """A key file shaped like the one Google hands out (PKCS#8 PEM private key)."""
    pem = _test_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "salon-project",
            "private_key_id": "0123456789abcdef",
            "private_key": pem.decode(),
            "client_email": email,
            "client_id": "1234567890",
            "token_uri": TOKEN_AUDIENCE,
        }
    )


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - ord("A") + 1
    return n - 1


def col_letters(index: int) -> str:
    out = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        out = chr(ord("A") + rest) + out
    return out


class ApiError(Exception):
    def __init__(self, code: int, status: str, message: str):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message

    def response(self) -> Response:
        return Response(
            self.code,
            {"error": {"code": self.code, "message": self.message, "status": self.status,
                       "errors": [{"message": self.message, "domain": "global", "reason": self.status}]}},
        )  # fmt: skip


@dataclass
class Spreadsheet:
    shared_with: set[str]
    sheets: dict[str, list[list[Any]]] = field(default_factory=dict)


class GoogleSheets:
    def __init__(
        self, *, account: str = "leadflow@salon-project.iam.gserviceaccount.com",
        reads_per_minute: int = 60, writes_per_minute: int = 60,
    ):  # fmt: skip
        self.account = account
        self.public_key = _test_key().public_key()
        self.reads_per_minute = reads_per_minute
        self.writes_per_minute = writes_per_minute
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # token → (account, expires at)
        self.token_requests = 0
        self.api_requests: list[tuple[str, str]] = []  # (kind read/write, method) per Sheets request
        self._usage: dict[tuple[str, str], deque[float]] = {}
        self._faults: deque[tuple[int, str, str] | str | None] = deque()
        self.input_options: set[str] = set()  # valueInputOption of every write
        self._lock = threading.RLock()
        self._server = FakeServer(self.route)

    # ------------------------------------------------------------------ test controls
    def __enter__(self) -> GoogleSheets:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def token_url(self) -> str:
        return self._server.url + "/token"

    def create(self, spreadsheet_id: str, sheet: str = "Лиды", rows: list[list[Any]] | None = None,
               shared: bool = True) -> None:  # fmt: skip
        with self._lock:
            book = self.spreadsheets.setdefault(
                spreadsheet_id, Spreadsheet(shared_with={self.account} if shared else set())
            )
            book.sheets[sheet] = [list(r) for r in rows or []]

    def rows(self, spreadsheet_id: str, sheet: str = "Лиды") -> list[list[Any]]:
        """The grid as the owner sees it, trailing empties trimmed."""
        with self._lock:
            return _trim(self.spreadsheets[spreadsheet_id].sheets[sheet])

    def edit(self, spreadsheet_id: str, sheet: str, fn: Any) -> None:
        """What a person does in the browser: ``fn(grid)`` changes the rows in place."""
        with self._lock:
            fn(self.spreadsheets[spreadsheet_id].sheets[sheet])

    def fail_next(self, status: int, reason: str = "", message: str = "", *, after: int = 0) -> None:
        """The Sheets request after ``after`` others is answered with this error (nothing done)."""
        self._faults.extend([None] * after + [(status, reason, message)])

    def lose_next_answer(self, *, after: int = 0) -> None:
        """The Sheets request after ``after`` others is carried out; its answer comes too late."""
        self._faults.extend([None] * after + ["lose"])

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.api_requests if k == kind)

    # ------------------------------------------------------------------ the wire
    def route(self, request: Request) -> Response:
        try:
            if request.path == "/token" and request.method == "POST":
                return self._token(request)
            if request.path.startswith("/v4/spreadsheets/"):
                return self._sheets(request)
            raise ApiError(404, "NOT_FOUND", "Requested entity was not found.")
        except ApiError as exc:
            return exc.response()

    def _token(self, request: Request) -> Response:
        self.token_requests += 1
        form = request.form()

        def refuse(description: str, error: str = "invalid_grant") -> Response:
            return Response(400, {"error": error, "error_description": description})

        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return refuse("Invalid grant_type: " + form.get("grant_type", ""), "unsupported_grant_type")
        parts = form.get("assertion", "").split(".")
        if len(parts) != 3:
            return refuse("Invalid JWT: malformed")
        try:
            header, claims = json.loads(_unb64(parts[0])), json.loads(_unb64(parts[1]))
            self.public_key.verify(
                _unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:
            return refuse("Invalid JWT Signature.")
        now = time.time()
        if header.get("alg") != "RS256":
            return refuse("Invalid JWT: alg")
        if claims.get("iss") != self.account:
            return refuse("Invalid JWT: iss", "invalid_client")
        if claims.get("aud") != TOKEN_AUDIENCE or SCOPE not in str(claims.get("scope", "")).split():
            return refuse("Invalid JWT: aud or scope")
        iat, exp = claims.get("iat"), claims.get("exp")
        if (
            not isinstance(iat, int)
            or not isinstance(exp, int)
            or exp - iat > 3600
            or iat > now + 60
            or exp < now
        ):
            return refuse(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values in the JWT claim."
            )
        token = "ya29." + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = (claims["iss"], now + 3599)
        return Response(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _caller(self, request: Request) -> str:
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        with self._lock:
            found = self.tokens.get(token)
        if not found or found[1] < time.time():
            raise ApiError(
                401, "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                "cookie or other valid authentication credential.",
            )  # fmt: skip
        return found[0]

    def _spend(self, account: str, kind: str) -> None:
        limit = self.reads_per_minute if kind == "read" else self.writes_per_minute
        now = time.time()
        used = self._usage.setdefault((account, kind), deque())
        while used and used[0] < now - 60:
            used.popleft()
        if len(used) >= limit:
            metric = "Read requests" if kind == "read" else "Write requests"
            raise ApiError(
                429, "RESOURCE_EXHAUSTED",
                f"Quota exceeded for quota metric '{metric}' and limit '{metric} per minute per user' of "
                "service 'sheets.googleapis.com' for consumer 'project_number:123456789012'.",
            )  # fmt: skip
        used.append(now)

    def _sheets(self, request: Request) -> Response:
        account = self._caller(request)
        rest = unquote(request.path.removeprefix("/v4/spreadsheets/"))
        spreadsheet_id, _, tail = rest.partition("/")
        if tail == "values:batchUpdate" and request.method == "POST":
            kind, method = "write", "batchUpdate"
        elif tail.startswith("values/") and tail.endswith(":append") and request.method == "POST":
            kind, method = "write", "append"
        elif tail.startswith("values/") and request.method == "GET":
            kind, method = "read", "get"
        else:
            raise ApiError(404, "NOT_FOUND", "Method not found.")
        with self._lock:
            book = self.spreadsheets.get(spreadsheet_id)
            if book is None:
                raise ApiError(404, "NOT_FOUND", "Requested entity was not found.")
            if account not in book.shared_with:
                raise ApiError(403, "PERMISSION_DENIED", "The caller does not have permission")
            self._spend(account, kind)
            self.api_requests.append((kind, method))
            fault = self._faults.popleft() if self._faults else None
            if isinstance(fault, tuple):
                status, reason, message = fault
                raise ApiError(status, reason or "INTERNAL", message or "Internal error encountered.")
            if method == "get":
                answer = self._get(book, tail.removeprefix("values/"))
            elif method == "append":
                answer = self._append(book, tail.removeprefix("values/").removesuffix(":append"), request)
            else:
                answer = self._batch_update(book, request)
        if fault == "lose":
            return Response(200, answer, delay_s=3)  # done, and the client has given up waiting
        return Response(200, answer)

    # ------------------------------------------------------------------ A1 ranges
    def _parse(self, book: Spreadsheet, text: str) -> tuple[str, int, int, int | None, int | None]:
        """(sheet, first row, first col, last row or None, last col or None), 0-based, inclusive."""
        sheet_part, bang, cells = text.rpartition("!")
        if not bang:
            sheet_part, cells = text, ""
        if sheet_part.startswith("'") and sheet_part.endswith("'") and len(sheet_part) >= 2:
            sheet = sheet_part[1:-1].replace("''", "'")
        elif re.fullmatch(r"[A-Za-z0-9_]+", sheet_part):
            sheet = sheet_part
        else:
            raise ApiError(400, "INVALID_ARGUMENT", f"Unable to parse range: {text}")
        if sheet not in book.sheets:
            raise ApiError(400, "INVALID_ARGUMENT", f"Unable to parse range: {text}")
        if not cells:
            return sheet, 0, 0, None, None
        m = _A1.match(cells)
        if not m or not any(m.groups()):
            raise ApiError(400, "INVALID_ARGUMENT", f"Unable to parse range: {text}")
        c1, r1, c2, r2 = m.groups()
        first_row = int(r1) - 1 if r1 else 0
        first_col = col_index(c1) if c1 else 0
        if ":" not in cells:
            return sheet, first_row, first_col, first_row, first_col
        last_row = int(r2) - 1 if r2 else None
        last_col = col_index(c2) if c2 else None
        return sheet, first_row, first_col, last_row, last_col

    def _get(self, book: Spreadsheet, text: str) -> dict[str, Any]:
        sheet, r1, c1, r2, c2 = self._parse(book, text)
        grid = book.sheets[sheet]
        rows = grid[r1 : (r2 + 1) if r2 is not None else None]
        values = _trim([row[c1 : (c2 + 1) if c2 is not None else None] for row in rows])
        answer: dict[str, Any] = {"range": text, "majorDimension": "ROWS"}
        if values:
            answer["values"] = values
        return answer

    def _append(self, book: Spreadsheet, text: str, request: Request) -> dict[str, Any]:
        option = request.query.get("valueInputOption")
        self.input_options.add(str(option))
        if option not in ("RAW", "USER_ENTERED"):
            raise ApiError(400, "INVALID_ARGUMENT", "'valueInputOption' is required but not specified")
        sheet, _, c1, _, _ = self._parse(book, text)
        grid = book.sheets[sheet]
        body = request.json()
        rows = body.get("values") or []
        filled = [i for i, row in enumerate(grid) if any(_filled(v) for v in row)]
        start = (filled[-1] + 1) if filled else 0
        table = (
            f"{text.rpartition('!')[0]}!A1:{col_letters(max((len(r) for r in grid), default=1) - 1)}{start}"
        )
        width = 0
        for offset, row in enumerate(rows):
            target = start + offset
            grid.insert(target, []) if target < len(grid) else grid.append([])
            width = max(width, len(row))
            for j, value in enumerate(row):
                if value is not None:
                    _put(grid, target, c1 + j, value)
        updated = f"{text.rpartition('!')[0]}!{col_letters(c1)}{start + 1}:{col_letters(c1 + width - 1)}{start + len(rows)}"
        return {
            "spreadsheetId": "",
            "tableRange": table if filled else "",
            "updates": {"updatedRange": updated, "updatedRows": len(rows), "updatedColumns": width,
                        "updatedCells": sum(1 for r in rows for v in r if v is not None)},
        }  # fmt: skip

    def _batch_update(self, book: Spreadsheet, request: Request) -> dict[str, Any]:
        body = request.json()
        self.input_options.add(str(body.get("valueInputOption")))
        if body.get("valueInputOption") not in ("RAW", "USER_ENTERED"):
            raise ApiError(400, "INVALID_ARGUMENT", "'valueInputOption' is required but not specified")
        parsed = [
            (self._parse(book, item["range"]), item.get("values") or []) for item in body.get("data", [])
        ]
        cells = 0
        responses = []
        for (sheet, r1, c1, _, _), rows in parsed:  # every range parsed first: all or nothing
            grid = book.sheets[sheet]
            for i, row in enumerate(rows):
                for j, value in enumerate(row):
                    if value is not None:
                        _put(grid, r1 + i, c1 + j, value)
                        cells += 1
            responses.append({"updatedRows": len(rows)})
        return {"totalUpdatedCells": cells, "totalUpdatedSheets": len({p[0][0] for p in parsed}),
                "responses": responses}  # fmt: skip


def _filled(value: Any) -> bool:
    return value not in (None, "")


def _put(grid: list[list[Any]], row: int, col: int, value: Any) -> None:
    while len(grid) <= row:
        grid.append([])
    cells = grid[row]
    while len(cells) <= col:
        cells.append("")
    cells[col] = value


def _trim(rows: list[list[Any]]) -> list[list[Any]]:
    out = []
    for row in rows:
        cells = list(row)
        while cells and not _filled(cells[-1]):
            cells.pop()
        out.append(cells)
    while out and not out[-1]:
        out.pop()
    return out
