"""The panel's requests and answers as API Gateway (HTTP API, payload 2.0) carries them."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl

MAX_FORM_BYTES = 64_000


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    cookies: dict[str, str]
    host: str
    origin: str | None

    def arg(self, name: str, default: str = "") -> str:
        return (self.query.get(name) or default).strip()


@dataclass
class Response:
    status: int
    body: str = ""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)

    def event(self, payload_version: str = "2.0") -> dict:
        headers = {
            "Content-Type": self.content_type,
            "Cache-Control": "no-store",  # personal data: never cached by a browser or a proxy
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",  # the login token never leaks in a Referer
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            **self.headers,
        }
        answer: dict = {"statusCode": self.status, "headers": headers, "body": self.body}
        if self.cookies and payload_version == "2.0":
            answer["cookies"] = self.cookies
        elif self.cookies:  # payload 1.0 (Yandex API Gateway): one Set-Cookie header each
            answer["multiValueHeaders"] = {"Set-Cookie": self.cookies}
        return answer


def redirect(location: str, cookies: list[str] | None = None) -> Response:
    return Response(303, "", "text/plain; charset=utf-8", {"Location": location}, cookies or [])


class BadRequest(ValueError):
    pass


def parse_event(event: dict) -> Request:
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or event.get("httpMethod") or "GET").upper()
    path = str(event.get("rawPath") or http.get("path") or event.get("path") or "/panel")  # 2.0 / 1.0
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    query = {k: v for k, v in (event.get("queryStringParameters") or {}).items() if isinstance(v, str)}
    cookie_lines = list(event.get("cookies") or [])
    if headers.get("cookie"):
        cookie_lines.append(headers["cookie"])
    cookies: dict[str, str] = {}
    for line in cookie_lines:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(line)
        except CookieError:
            continue  # a malformed cookie is no cookie
        cookies.update({name: morsel.value for name, morsel in jar.items()})
    form: dict[str, str] = {}
    if method == "POST":
        body = event.get("body") or ""
        raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
        if len(raw) > MAX_FORM_BYTES:
            raise BadRequest("form too large")
        kind = headers.get("content-type", "").split(";")[0].strip()
        if raw and kind not in ("application/x-www-form-urlencoded", ""):
            raise BadRequest("expected a form")
        try:
            form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise BadRequest("form is not UTF-8") from exc
    host = headers.get("host") or str((event.get("requestContext") or {}).get("domainName") or "")
    return Request(method, path.rstrip("/") or "/", query, form, cookies, host, headers.get("origin"))


def session_cookie(name: str, value: str, max_age_s: int, secure: bool) -> str:
    flags = f"{name}={value}; Path=/panel; Max-Age={max_age_s}; HttpOnly; SameSite=Lax"
    return flags + ("; Secure" if secure else "")


def is_local_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in ("127.0.0.1", "localhost", "[::1]")
