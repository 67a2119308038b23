"""When things are due: SLA clocks, appointment reminders, nudges, win-backs, the daily digest.

Each plan is a ``Timer`` the scheduled functions find by due time (see adapters/store/timers.py);
this module only says which timers a lead needs and when, never stores one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leadflow.business import BusinessConfig, clock_time
from leadflow.clock import iso
from leadflow.domain.calendar import Calendar
from leadflow.domain.models import CLOSED_STATUSES, Intent, Lead, LeadStatus, Temperature
from leadflow.domain.qualify.text import is_emoji_only


@dataclass
class Timer:
    timer_id: str
    queue: str  # which scheduled function works it: "escalate" or "remind"
    kind: str
    due_at: str  # clock.iso() string
    lead_id: str | None = None
    step: int = 0
    attempts: int = 0
    data: dict = field(default_factory=dict)

    @property
    def due(self) -> datetime:
        return datetime.fromisoformat(self.due_at.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- SLA


def sla_minutes(business: BusinessConfig, temperature: str | None, intent: str | None = None) -> int:
    """By temperature; a question (cold, but a client waiting for an answer) has its own clock."""
    sla = business.sla
    if intent == Intent.question:
        return sla.question_min
    return {Temperature.hot: sla.hot_min, Temperature.warm: sla.warm_min}.get(temperature, sla.cold_min)  # type: ignore[call-overload]


def sla_due(business: BusinessConfig, lead: Lead, start: datetime) -> datetime:
    """The SLA counts in the branch's business minutes: a lead at closing time is due after opening."""
    calendar = Calendar.for_branch(business, lead.branch)
    return calendar.add_business_minutes(start, sla_minutes(business, lead.temperature, lead.intent))


def sla_timer(business: BusinessConfig, lead: Lead, now: datetime) -> Timer | None:
    if lead.accepted_at or lead.status in CLOSED_STATUSES:
        return None
    due = sla_due(business, lead, lead.assigned_at or now)
    return Timer(f"sla#{lead.lead_id}", "escalate", "sla", iso(due), lead.lead_id)


def is_waiting_for_owner(lead: Lead) -> bool:
    return lead.accepted_at is None and lead.status == LeadStatus.assigned


def seniors(business: BusinessConfig) -> list[str]:
    chosen = [s.id for s in business.staff if s.active and s.role in ("senior", "owner")]
    return chosen or [s.id for s in business.staff if s.active and s.role == "manager"]


def after_business_minutes(business: BusinessConfig, lead: Lead, now: datetime, minutes: int) -> datetime:
    """The ladder's next step in business minutes, like the SLA itself: a lead that breaches at
    closing time is escalated and reassigned after opening, when someone can take it."""
    return Calendar.for_branch(business, lead.branch).add_business_minutes(now, minutes)


# --------------------------------------------------------------------------- client messages


EMOJI_WAIT = timedelta(hours=24)


def emoji_wait_timer(lead: Lead) -> Timer | None:
    """A lead that is only emoji so far («💅🔥») is not a target by the rules, but maybe a client
    about to write: it stays open a day, then this timer has it closed unless words came."""
    if lead.intent != Intent.not_target or not lead.recent_texts:
        return None
    if not all(is_emoji_only(text) for text in lead.recent_texts):
        return None
    due = lead.received_at + EMOJI_WAIT
    return Timer(f"emoji_wait#{lead.lead_id}", "escalate", "emoji_wait", iso(due), lead.lead_id)


def quiet_until(business: BusinessConfig, now: datetime) -> datetime | None:
    """The end of the quiet hours when ``now`` falls inside them, else None."""
    quiet = business.reminders.quiet_hours
    start, end = clock_time(quiet.start), clock_time(quiet.end)
    local = now.astimezone(business.tz)
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, business.tz)


def booking_timers(business: BusinessConfig, lead: Lead, now: datetime) -> list[Timer]:
    """After a booking: the reminders before it; after a no-show: the win-back offer."""
    if lead.status == LeadStatus.no_show:
        due = now + timedelta(days=business.reminders.winback_after_days)
        return [Timer(f"winback#{lead.lead_id}", "remind", "winback", iso(due), lead.lead_id)]
    if not lead.appointment_at:
        return []
    timers = []
    for hours in business.reminders.before_appointment_h:
        due = lead.appointment_at - timedelta(hours=hours)
        if due > now:
            timers.append(
                Timer(
                    f"appt#{lead.lead_id}#{hours}",
                    "remind",
                    "appointment",
                    iso(due),
                    lead.lead_id,
                    data={"at": lead.appointment_at.isoformat(), "hours": hours},
                )
            )
    return timers


def nudge_timer(business: BusinessConfig, lead: Lead) -> Timer | None:
    """The first nudge to a lead that went quiet before it was complete."""
    days = business.reminders.nudge_after_days
    if not days or lead.status in CLOSED_STATUSES or lead.appointment_at:
        return None
    due = lead.last_message_at + timedelta(days=days[0])
    return Timer(
        f"nudge#{lead.lead_id}", "remind", "nudge", iso(due), lead.lead_id,
        data={"since": lead.last_message_at.isoformat()},
    )  # fmt: skip


def next_digest_at(business: BusinessConfig, now: datetime) -> datetime:
    local = now.astimezone(business.tz)
    at = datetime.combine(local.date(), clock_time(business.reminders.digest_at), business.tz)
    return at if at > local else at + timedelta(days=1)
