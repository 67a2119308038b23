"""ЮKassa API v3, for one thing: re-reading a payment a notification names
(``GET /v3/payments/{id}``, HTTP Basic with the shop id and the secret key), because a
notification is not signed and only the API's answer is believed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

log = logging.getLogger(__name__)


class PaymentsUnavailable(Exception):
    """ЮKassa did not answer as it should (retried by the queue)."""


@dataclass(frozen=True)
class Payment:
    payment_id: str
    status: str  # pending | waiting_for_capture | succeeded | canceled
    paid: bool
    amount: Decimal | None
    currency: str | None
    lead_id: str | None  # metadata.lead_id


class YookassaPayments:
    def __init__(
        self, session: requests.Session, *, shop_id: str, secret_key: str,
        api_base: str = "https://api.yookassa.ru", timeout_s: float = 10,
    ):  # fmt: skip
        self.session = session
        self.auth = (shop_id, secret_key)
        self.base = api_base.rstrip("/") + "/v3/"
        self.timeout_s = timeout_s

    def payment(self, payment_id: str) -> Payment | None:
        """The payment as ЮKassa has it; None when ЮKassa does not know it (404)."""
        try:
            response = self.session.get(
                self.base + f"payments/{payment_id}", auth=self.auth, timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise PaymentsUnavailable(f"ЮKassa: {type(exc).__name__}") from None
        if response.status_code == 404:
            return None
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            code = body.get("code") if isinstance(body, dict) else None
            log.warning("yookassa payment read failed: status=%s code=%s", response.status_code, code)
            raise PaymentsUnavailable(f"ЮKassa: HTTP {response.status_code}" + (f" {code}" if code else ""))
        given_amount, given_metadata = body.get("amount"), body.get("metadata")
        amount: dict[str, Any] = given_amount if isinstance(given_amount, dict) else {}
        metadata: dict[str, Any] = given_metadata if isinstance(given_metadata, dict) else {}
        try:
            value = Decimal(str(amount.get("value"))) if amount.get("value") is not None else None
        except InvalidOperation:
            value = None
        return Payment(
            payment_id=str(body.get("id") or ""),
            status=str(body.get("status") or ""),
            paid=bool(body.get("paid")),
            amount=value,
            currency=str(amount.get("currency")) if amount.get("currency") else None,
            lead_id=str(metadata.get("lead_id")) if metadata.get("lead_id") else None,
        )
