"""Working the timers that are due on one queue: claim each, run its handler, and give up on a
timer that keeps failing — visibly, with the owner told — instead of retrying it forever."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from leadflow.adapters.store import Store
from leadflow.domain.plans import Timer
from leadflow.observability import logger, metrics

MAX_ATTEMPTS = 5  # a timer claimed this often without finishing goes to the failed state


def work_due_timers(
    store: Store,
    queue: str,
    now: datetime,
    handlers: Mapping[str, Callable[[Timer, datetime], None]],
    on_give_up: Callable[[Timer, str], None],
) -> int:
    """Run what is due; returns how many timers were worked. One timer's failure never stops the others."""
    done = 0
    for timer in store.timers.due(queue, now):
        if timer.attempts >= MAX_ATTEMPTS:
            reason = f"не удалось выполнить после {timer.attempts} попыток"
            store.timers.give_up(timer, reason, now)
            metrics.add_metric(name="TimersFailed", unit="Count", value=1)
            logger.error("timer gave up", extra={"timer_id": timer.timer_id, "kind": timer.kind})
            on_give_up(timer, reason)
            continue
        if not store.timers.claim(timer, now):
            continue  # an overlapping run took it
        handler = handlers.get(timer.kind)
        if handler is None:
            logger.warning("unknown timer kind", extra={"kind": timer.kind})
            store.timers.cancel(timer.timer_id)
            continue
        try:
            handler(timer, now)
        except Exception:
            # The claim's lease runs out and the timer comes due again, one attempt further.
            logger.exception("timer failed", extra={"timer_id": timer.timer_id, "kind": timer.kind})
            continue
        done += 1
    return done
