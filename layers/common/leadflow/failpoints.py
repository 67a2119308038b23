"""Failpoints: crash the process at a named boundary between two writes, as a killed Lambda would.

``hit("route.after_crm_push")`` sits where a crash would leave the system half-way. It does
nothing unless LEADFLOW_FAILPOINTS arms that name, e.g.
``LEADFLOW_FAILPOINTS="ingest.after_store=crash,route.after_crm_push=crash*3"``: ``crash`` ends
the process at once with ``os._exit`` (no ``finally``, no flush, no cleanup) after writing
``failpoint NAME fired`` to stderr; ``*N`` lets it fire N times (default 1).

The count is shared by every process of one `leadflow up` run through a small JSON file named by
LEADFLOW_FAILPOINTS_STATE (the local stack creates it), locked with fcntl while read and
written; without that variable the count is this process's own.

Nothing is read at import; the environment is read on each call (one dict lookup) and the
parsed spec is cached by its text, so an unarmed ``hit()`` costs nothing measurable.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

ENV = "LEADFLOW_FAILPOINTS"
STATE_ENV = "LEADFLOW_FAILPOINTS_STATE"
CRASH_EXIT_CODE = 86  # any non-zero status would do; this one is easy to recognise in a log

# Every boundary a fault test may crash at. Add a name here when you place a new hit().
KNOWN: frozenset[str] = frozenset(
    {
        "ingest.after_store",
        "ingest.after_enqueue",
        "score.after_reply_sent",
        "score.before_hand_on",
        "route.after_assign",
        "route.after_crm_push",
        "route.after_card_sent",
        "escalate.after_send",
        "remind.after_send",
        "tally.after_write",
        "workspace.after_action",
        "booking.after_book",
        "route.after_details_shown",
        "crm_sync.after_booking_write",
    }
)
ACTIONS = frozenset({"crash"})
_ENTRY = re.compile(r"(?P<name>[\w.-]+)\s*=\s*(?P<action>\w+)(?:\s*\*\s*(?P<times>\d+))?")


class FailpointError(ValueError):
    """LEADFLOW_FAILPOINTS names a failpoint or an action that does not exist, or is malformed."""


@dataclass(frozen=True)
class Failpoint:
    name: str
    action: str
    times: int = 1


def parse(spec: str) -> dict[str, Failpoint]:
    """``name=crash[*N],…`` → armed failpoints by name; FailpointError lists the known names."""
    armed: dict[str, Failpoint] = {}
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        found = _ENTRY.fullmatch(entry)
        if not found:
            raise FailpointError(f"{ENV}: cannot read {entry!r}; write name=crash or name=crash*N")
        name, action = found["name"], found["action"]
        if name not in KNOWN:
            raise FailpointError(f"{ENV}: unknown failpoint {name!r}; known: {', '.join(sorted(KNOWN))}")
        if action not in ACTIONS:
            raise FailpointError(
                f"{ENV}: unknown action {action!r} for {name}; known: {', '.join(sorted(ACTIONS))}"
            )
        times = int(found["times"] or 1)
        if times < 1:
            raise FailpointError(f"{ENV}: {name} must fire at least once, got *{times}")
        armed[name] = Failpoint(name, action, times)
    return armed


_parsed: tuple[str, dict[str, Failpoint]] | None = None
_fired_here: dict[str, int] = {}  # the count when no state file is shared


def armed() -> dict[str, Failpoint]:
    """The failpoints LEADFLOW_FAILPOINTS arms now (parsed once per distinct value)."""
    global _parsed
    spec = os.environ.get(ENV)
    if not spec:
        return {}
    if _parsed is None or _parsed[0] != spec:
        _parsed = (spec, parse(spec))
    return _parsed[1]


def hit(name: str) -> None:
    """Crash here if LEADFLOW_FAILPOINTS arms `name` and it has fired fewer times than allowed."""
    if not os.environ.get(ENV):
        return
    failpoints = armed()
    if name not in KNOWN:
        raise FailpointError(f"hit({name!r}): not a known failpoint; add it to failpoints.KNOWN")
    point = failpoints.get(name)
    if point is None or not _take_turn(point):
        return
    os.write(2, f"failpoint {name} fired\n".encode())
    os._exit(CRASH_EXIT_CODE)


def _take_turn(point: Failpoint) -> bool:
    """Count one firing if the budget allows; True when this call should fire."""
    state = os.environ.get(STATE_ENV)
    if not state:
        if _fired_here.get(point.name, 0) >= point.times:
            return False
        _fired_here[point.name] = _fired_here.get(point.name, 0) + 1
        return True
    import fcntl

    with open(state, "a+", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # released when the file closes (or the process dies)
        file.seek(0)
        text = file.read()
        fired: dict[str, int] = json.loads(text) if text.strip() else {}
        if fired.get(point.name, 0) >= point.times:
            return False
        fired[point.name] = fired.get(point.name, 0) + 1
        file.seek(0)
        file.truncate()
        file.write(json.dumps(fired))
        file.flush()  # in the kernel before the lock goes: the crash that follows cannot lose it
    return True


def fired_counts(state: str | Path) -> dict[str, int]:
    """How many times each failpoint fired in a run (read from its state file)."""
    try:
        text = Path(state).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return json.loads(text) if text.strip() else {}
