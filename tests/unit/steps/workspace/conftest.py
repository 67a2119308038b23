"""Fixtures of the workspace tests (the driver is tests/support/workspace.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leadflow import clock, wiring
from tests.fakes.telegram_server import FakeTelegram
from tests.support.builders import use_crm
from tests.support.workspace import ANNA, KATYA, MARINA, SATURDAY_11_KRSK, SECRETS, RecordingCrm, Workspace


def _workspace(aws, monkeypatch, tg: FakeTelegram | None) -> Workspace:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    if tg is not None:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", tg.token)
        monkeypatch.setenv("TELEGRAM_API_BASE", tg.url)
    wiring.reset()
    crm = RecordingCrm()
    use_crm(monkeypatch, crm)
    clock.freeze(SATURDAY_11_KRSK)
    return Workspace(aws, tg, crm)


@pytest.fixture
def telegram_ws(aws, monkeypatch) -> Iterator[Workspace]:
    """Real Bot API calls to a FakeTelegram; Anna, Katya and Marina connected through invites."""
    with FakeTelegram() as tg:
        ws = _workspace(aws, monkeypatch, tg)
        for staff_id, chat in (("anna", ANNA), ("katya", KATYA), ("marina", MARINA)):
            ws.connect(staff_id, chat)
        yield ws


@pytest.fixture
def outbox_ws(aws, monkeypatch) -> Workspace:
    """No bot token: everything staff would see is recorded in the outbox."""
    ws = _workspace(aws, monkeypatch, None)
    for staff_id, chat in (("anna", ANNA), ("katya", KATYA), ("marina", MARINA)):
        ws.connect(staff_id, chat)
    return ws
