"""A fake ЮKassa API v3, the one method leadflow uses: ``GET /v3/payments/{id}`` with HTTP Basic
(shop id : secret key). Answers as documented: the payment object (``id``, ``status``, ``paid``,
``amount{value, currency}``, ``metadata``, ``created_at``), 401 ``invalid_credentials`` and 404
``not_found`` as ``{"type": "error", "id", "code", "description"}``."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field

from tests.fakes.http import Request, Response


@dataclass
class FakeYookassa:
    shop_id: str = "123456"
    secret_key: str = "test_secret"
    payments: dict[str, dict] = field(default_factory=dict)

    def add(self, payment_id: str, lead_id: str, value: str = "4500.00", status: str = "succeeded") -> dict:
        payment = {
            "id": payment_id, "status": status, "paid": status in ("succeeded", "waiting_for_capture"),
            "amount": {"value": value, "currency": "RUB"}, "metadata": {"lead_id": lead_id},
            "created_at": "2026-12-01T07:05:00.000Z", "test": True, "refundable": status == "succeeded",
            "recipient": {"account_id": self.shop_id, "gateway_id": "100500"},
        }  # fmt: skip
        self.payments[payment_id] = payment
        return payment

    @staticmethod
    def _error(status: int, code: str, description: str) -> Response:
        return Response(
            status, {"type": "error", "id": str(uuid.uuid4()), "code": code, "description": description}
        )

    def route(self, request: Request) -> Response:
        expected = base64.b64encode(f"{self.shop_id}:{self.secret_key}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return self._error(401, "invalid_credentials", "Login or password is incorrect")
        parts = request.path.strip("/").split("/")
        if request.method != "GET" or len(parts) != 3 or parts[:2] != ["v3", "payments"]:
            return self._error(404, "not_found", "Incorrect URL")
        payment = self.payments.get(parts[2])
        if payment is None:
            return self._error(404, "not_found", "Payment doesn't exist or access denied")
        return Response(200, payment)
