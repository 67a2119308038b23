"""The one clock every function reads.

In AWS it is the wall clock. The local stack can run it K times faster (``--speed``) so a day
of SLA and reminder behaviour plays out in minutes: it sets LEADFLOW_CLOCK_SPEED and
LEADFLOW_CLOCK_ORIGIN (the real instant the fast clock started), and optionally
LEADFLOW_CLOCK_START (where the clock stood at that instant; the demo starts on a working
morning whatever the hour). Tests freeze or move it.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

_frozen: datetime | None = None


def now() -> datetime:
    """Current time, timezone-aware UTC."""
    if _frozen is not None:
        return _frozen
    real = datetime.now(UTC)
    speed = float(os.environ.get("LEADFLOW_CLOCK_SPEED") or 1)
    start = os.environ.get("LEADFLOW_CLOCK_START")
    if speed == 1 and not start:
        return real
    origin = datetime.fromtimestamp(float(os.environ.get("LEADFLOW_CLOCK_ORIGIN") or time.time()), UTC)
    base = datetime.fromisoformat(start).astimezone(UTC) if start else origin
    return base + (real - origin) * speed


def wall_now() -> datetime:
    """Real time, never run faster by ``--speed``: what a webhook's own timestamp is checked
    against (a platform stamps its requests with real time). Frozen and moved with ``now()``."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC)


def freeze(at: datetime) -> None:
    global _frozen
    if at.tzinfo is None:
        raise ValueError("freeze() needs an aware datetime")
    _frozen = at.astimezone(UTC)


def advance(delta: timedelta) -> None:
    if _frozen is None:
        raise RuntimeError("advance() needs a frozen clock")
    freeze(_frozen + delta)


def unfreeze() -> None:
    global _frozen
    _frozen = None


def iso(moment: datetime) -> str:
    """Sortable UTC string used as DynamoDB sort keys (due times, message order)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
