"""The «Добавить в календарь» link on the real local stack (both flavours): a booked lead's
confirmation carries <gateway URL>/ics/<token>.ics (PUBLIC_BASE_URL defaults to the gateway), and
that URL, fetched over HTTP through the local gateway, is the visit's iCalendar file."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from leadflow import clock, wiring
from leadflow_local.inspect import all_leads, book, outbox
from leadflow_local.stack import EXAMPLE_CONFIG, LocalStack, _free_port
from leadflow_local.webhooks import Webhooks

pytestmark = pytest.mark.integration
KRS = ZoneInfo("Asia/Krasnoyarsk")
OPENING = datetime(2026, 3, 14, 11, 0, tzinfo=KRS)  # Saturday, open


@pytest.fixture(params=["aws", "yandex"])
def stack(tmp_path, request) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    os.environ.pop("PUBLIC_BASE_URL", None)
    config = tmp_path / "business.yaml"
    config.write_text(
        EXAMPLE_CONFIG.read_text(encoding="utf-8") + "\nbooking: {enabled: true, hold_min: 0}\n",
        encoding="utf-8",
    )
    local = LocalStack(
        port=_free_port(), config_path=config, state_dir=tmp_path / "state", schedule=False,
        clock_start=OPENING, flavor=request.param,
    )  # fmt: skip
    local.start()
    try:
        yield local
    finally:
        local.stop()
        os.environ.clear()
        os.environ.update(saved)
        wiring.reset()


def fetch(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (the local gateway)
            return answer.status, answer.headers["Content-Type"], answer.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode("utf-8")


def test_the_confirmations_calendar_link_is_served_by_the_local_gateway(stack):
    hooks = Webhooks(stack.url, stack.state()["secrets"])
    delivery = hooks.whatsapp_text(
        "+79235551122", "Ольга", "Здравствуйте! Хочу на маникюр завтра", clock.now()
    )
    assert hooks.post(delivery).status_code == 200
    assert stack.drain(timeout_s=10)
    (lead,) = all_leads()
    visit = (OPENING + timedelta(days=1)).replace(hour=15)
    book(lead.lead_id, visit)
    (confirmation,) = [m for m in outbox() if m["kind"] == "booking_confirmation"]
    prefix = f"Добавить в календарь: {stack.url}/ics/"
    assert prefix in confirmation["text"], confirmation["text"]
    url = confirmation["text"].split("Добавить в календарь: ", 1)[1]
    status, kind, body = fetch(url)
    assert (status, kind) == (200, "text/calendar; charset=utf-8")
    assert "DTSTART:20260315T080000Z\r\n" in body and f"UID:{lead.lead_id}@leadflow\r\n" in body
    status, _, body = fetch(f"{stack.url}/ics/{'A' * 32}.ics")
    assert status == 404 and "Traceback" not in body
