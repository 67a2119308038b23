"""Fixtures of the workspace tests (the driver is tests/support/workspace.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.telegram_server import FakeTelegram
from tests.support.workspace import ANNA, KATYA, MARINA, Workspace, start_workspace


@pytest.fixture
def telegram_ws(aws, monkeypatch) -> Iterator[Workspace]:
    """Real Bot API calls to a FakeTelegram; Anna, Katya and Marina connected through invites."""
    with FakeTelegram() as tg:
        ws = start_workspace(aws, monkeypatch, tg)
        for staff_id, chat in (("anna", ANNA), ("katya", KATYA), ("marina", MARINA)):
            ws.connect(staff_id, chat)
        yield ws


@pytest.fixture
def outbox_ws(aws, monkeypatch) -> Workspace:
    """No bot token: everything staff would see is recorded in the outbox."""
    ws = start_workspace(aws, monkeypatch, None)
    for staff_id, chat in (("anna", ANNA), ("katya", KATYA), ("marina", MARINA)):
        ws.connect(staff_id, chat)
    return ws
