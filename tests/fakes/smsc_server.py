"""A fake SMSC.ru speaking its HTTP API with ``fmt=3`` (JSON): ``/sys/send.php``, ``/sys/status.php``,
``/sys/balance.php`` (the balance as a string, as SMSC sends it).

Messages are kept by (phone, id) as SMSC does when the client passes its own ``id``. Per-test
behaviour: ``balance``, ``invalid_numbers`` (error 7), ``rate_limited`` (error 9), ``slow_s``
(late answer; the message is recorded first, so a status query finds it).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from tests.fakes.http import Request, Response


@dataclass
class SmscMessage:
    id: int
    phone: str
    text: str
    sender: str | None
    segments: int
    cost: float
    status: int = 0  # handed to the operator
    sent_at: float = 0.0


def fake_segments(text: str) -> int:
    latin = all(ord(c) < 128 for c in text)
    single, multi = (160, 153) if latin else (70, 67)
    return 1 if len(text) <= single else math.ceil(len(text) / multi)


class FakeSmsc:
    price_per_segment = 3.1

    def __init__(self, login: str = "salon", password: str = "smsc-test-psw"):  # noqa: S107
        self.login = login
        self.password = password
        self.balance = 100.0
        self.invalid_numbers: set[str] = set()
        self.rate_limited = False
        self.slow_s = 0.0
        self.messages: dict[tuple[str, int], SmscMessage] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _error(code: int, text: str, **extra: object) -> Response:
        return Response(200, {"error": text, "error_code": code, **extra})

    def route(self, request: Request) -> Response:
        params = {**request.query, **request.form()}
        if params.get("fmt") != "3":
            return Response(200, "ERROR = 1 (fmt=3 expected by this fake)")
        if params.get("login") != self.login or params.get("psw") != self.password:
            return self._error(2, "authorise error")
        if request.path == "/sys/send.php":
            return self._send(params)
        if request.path == "/sys/status.php":
            return self._status(params)
        if request.path == "/sys/balance.php":
            return Response(200, {"balance": f"{self.balance:.2f}"})
        return self._error(1, "parameters error")

    def _send(self, params: dict[str, str]) -> Response:
        phone, text = params.get("phones", ""), params.get("mes", "")
        try:
            message_id = int(params["id"])
        except (KeyError, ValueError):
            return self._error(1, "parameters error")
        if self.rate_limited:
            return self._error(9, "duplicate request, wait a minute", id=message_id)
        if not phone.isdigit() or phone in self.invalid_numbers:
            return self._error(7, "invalid number format", id=message_id)
        segments = fake_segments(text)
        cost = round(segments * self.price_per_segment, 2)
        with self._lock:
            if cost > self.balance:
                return self._error(3, "no money", id=message_id)
            self.balance = round(self.balance - cost, 2)
            self.messages[(phone, message_id)] = SmscMessage(
                message_id, phone, text, params.get("sender"), segments, cost, sent_at=time.time()
            )
        body = {"id": message_id, "cnt": segments, "cost": f"{cost:.2f}", "balance": f"{self.balance:.2f}"}
        return Response(200, body, delay_s=self.slow_s)

    def _status(self, params: dict[str, str]) -> Response:
        try:
            key = (params.get("phone", ""), int(params["id"]))
        except (KeyError, ValueError):
            return self._error(1, "parameters error")
        message = self.messages.get(key)
        if message is None:
            return Response(200, {"status": -3, "last_date": "", "last_timestamp": 0, "err": 0})
        body: dict[str, object] = {
            "status": message.status,
            "last_date": time.strftime("%d.%m.%Y %H:%M:%S", time.localtime(message.sent_at)),
            "last_timestamp": int(message.sent_at),
            "err": 0 if message.status < 20 else message.status,
        }
        if params.get("all") in ("1", "2"):
            body.update({"phone": message.phone, "cost": f"{message.cost:.2f}", "sms_cnt": message.segments})
        return Response(200, body)

    def set_status(self, phone: str, message_id: int, status: int) -> None:
        self.messages[(phone, message_id)].status = status
