"""Waiting on a running stack, and the morning the end-to-end tests start at."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 20, every: float = 0.2) -> T:
    """The predicate's first truthy value, asked every `every` seconds; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def saturday_morning(tz_name: str = "Asia/Krasnoyarsk") -> datetime:
    """10:05 on the coming Saturday, a salon's busiest morning."""
    tz = ZoneInfo(tz_name)
    today = datetime.now(tz).date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    return datetime(saturday.year, saturday.month, saturday.day, 10, 5, tzinfo=tz)
