"""A fake SMS.ru speaking its JSON API (``json=1``): ``/sms/send``, ``/sms/status`` and ``/my/balance``.

Behaviour is set per test through attributes: ``balance``, ``invalid_numbers``,
``rate_limited_numbers``, ``slow_s`` (answer late — the message is still recorded, as a real
provider that accepted the request would), ``http_status`` (answer with a bare HTTP error).
Segments and price follow SMS.ru's public rule (160/153 Latin, 70/67 otherwise) computed here
independently of the production code.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from dataclasses import dataclass
from urllib.parse import urlencode

from tests.fakes.http import Request, Response


@dataclass
class SentSms:
    sms_id: str
    to: str
    text: str
    sender: str | None
    segments: int
    cost: float
    status_code: int = 102  # in transit


def fake_segments(text: str) -> int:
    latin = all(ord(c) < 128 for c in text)
    single, multi = (160, 153) if latin else (70, 67)
    return 1 if len(text) <= single else math.ceil(len(text) / multi)


class FakeSmsRu:
    price_per_segment = 2.5

    def __init__(self, api_id: str = "smsru-test-key"):
        self.api_id = api_id
        self.balance = 100.0
        self.invalid_numbers: set[str] = set()
        self.rate_limited_numbers: set[str] = set()
        self.slow_s = 0.0
        self.http_status: int | None = None
        self.sent: dict[str, SentSms] = {}
        self._ids = itertools.count(10000001)
        self._lock = threading.Lock()

    def _error(self, code: int, text: str) -> Response:
        return Response(200, {"status": "ERROR", "status_code": code, "status_text": text})

    def route(self, request: Request) -> Response:
        if self.http_status:
            return Response(self.http_status, "Service Unavailable")
        params = {**request.query, **request.form()}
        if params.get("api_id") != self.api_id:
            return self._error(200, "Неправильный api_id")
        if request.path == "/sms/send":
            return self._send(params)
        if request.path == "/sms/status":
            return self._status(params)
        if request.path == "/my/balance":
            return Response(200, {"status": "OK", "status_code": 100, "balance": self.balance})
        return self._error(211, "Метод не найден")

    def _send(self, params: dict[str, str]) -> Response:
        to, text = params.get("to", ""), params.get("msg", "")
        if not text:
            return self._error(203, "Нет текста сообщения")
        if to in self.invalid_numbers or not to.isdigit():
            entry = {"status": "ERROR", "status_code": 202, "status_text": "Неправильно указан номер"}
            return Response(
                200, {"status": "OK", "status_code": 100, "sms": {to: entry}, "balance": self.balance}
            )
        if to in self.rate_limited_numbers:
            entry = {
                "status": "ERROR",
                "status_code": 231,
                "status_text": "Превышен лимит одинаковых сообщений",
            }
            return Response(
                200, {"status": "OK", "status_code": 100, "sms": {to: entry}, "balance": self.balance}
            )
        segments = fake_segments(text)
        cost = round(segments * self.price_per_segment, 2)
        with self._lock:
            if cost > self.balance:
                return self._error(201, "Не хватает средств на лицевом счету")
            self.balance = round(self.balance - cost, 2)
            sms_id = f"202611-{next(self._ids)}"
            self.sent[sms_id] = SentSms(sms_id, to, text, params.get("from"), segments, cost)
        entry = {"status": "OK", "status_code": 100, "sms_id": sms_id, "cost": f"{cost:.2f}", "sms": segments}
        body = {"status": "OK", "status_code": 100, "sms": {to: entry}, "balance": self.balance}
        return Response(200, body, delay_s=self.slow_s)

    def _status(self, params: dict[str, str]) -> Response:
        sms_id = params.get("sms_id", "")
        sent = self.sent.get(sms_id)
        if sent is None:
            entry = {"status": "ERROR", "status_code": -1, "status_text": "Сообщение не найдено"}
        else:
            entry = {"status": "OK", "status_code": sent.status_code, "cost": sent.cost}
        return Response(
            200, {"status": "OK", "status_code": 100, "sms": {sms_id: entry}, "balance": self.balance}
        )

    def deliver(self, sms_id: str, status_code: int = 103) -> None:
        self.sent[sms_id].status_code = status_code


def smsru_callback_body(api_id: str, entries: list[str]) -> bytes:
    """The form SMS.ru POSTs to a callback handler: ``data[N]`` entries and their sha256 ``hash``."""
    fields = [(f"data[{i}]", entry) for i, entry in enumerate(entries)]
    fields.append(("hash", hashlib.sha256((api_id + "".join(entries)).encode()).hexdigest()))
    return urlencode(fields).encode()
