"""remind (every few minutes): appointment reminders, nudges, nurture hand-off, no-show win-back
and the owner's daily digest. All of it is due-time timers on the ``remind`` queue.

Client messages respect quiet hours in the business time zone: a message due at night waits
for morning. Sequences stop the moment the client replies or books.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from leadflow import clock, failpoints
from leadflow.adapters.channels.base import SendError
from leadflow.adapters.crm import Crm
from leadflow.adapters.messenger import Messenger, client_message
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig, Service
from leadflow.clock import iso
from leadflow.domain import lifecycle
from leadflow.domain.kpi import compute_kpis, digest_text
from leadflow.domain.models import CLOSED_STATUSES, Lead, LeadStatus
from leadflow.domain.plans import Timer, next_digest_at, quiet_until
from leadflow.domain.replies import describe_day
from leadflow.domain.sms import MARKETING_KINDS, fit_one_segment
from leadflow.observability import logger, metrics
from leadflow.steps.leads import LeadChanges
from leadflow.steps.timers import work_due_timers

# How the owner hears about a message that did not reach the client.
KIND_NAMES = {
    "reminder": "напоминание о записи",
    "nudge": "напоминание о заявке",
    "winback": "приглашение записаться снова",
}


class RemindStep:
    def __init__(self, store: Store, messenger: Messenger, crm: Crm, business: BusinessConfig):
        self.store = store
        self.messenger = messenger
        self.crm = crm
        self.business = business
        self.leads = LeadChanges(store, business)

    def handle_event(self, event: dict, context: Any) -> dict:
        """An EventBridge schedule's tick: work what is due on the leadflow clock."""
        self.messenger.until_deadline(context)
        return {"timers": self.run(clock.now())}

    def run(self, now: datetime) -> int:
        self.store.timers.put(
            Timer("digest", "remind", "digest", iso(next_digest_at(self.business, now))), only_if_new=True
        )
        self.store.timers.put(Timer("retention", "remind", "retention", iso(now)), only_if_new=True)
        handlers = {
            "appointment": self._appointment,
            "nudge": self._nudge,
            "winback": self._winback,
            "digest": self._digest,
            "retention": self._retention,
        }
        return work_due_timers(self.store, "remind", now, handlers, self._gave_up)

    def _gave_up(self, timer: Timer, reason: str) -> None:
        lead = self.store.leads.get(timer.lead_id) if timer.lead_id else None
        what = KIND_NAMES.get({"appointment": "reminder"}.get(timer.kind, timer.kind), "плановое сообщение")
        if lead is not None:
            self.messenger.to_owner(
                lead,
                f"owner_note:gave_up:{timer.timer_id}",
                f"⚠️ Не отправлено {what} ({reason}). Свяжитесь с клиентом сами.",
            )

    # ------------------------------------------------------------------ client messages
    def _to_client(self, timer: Timer, lead: Lead, kind: str, text: str, now: datetime) -> bool:
        """Send now, or move the timer to the end of the quiet hours. True when sent (or done)."""
        wait = quiet_until(self.business, now)
        if wait:
            self.store.timers.reschedule(timer.timer_id, wait, timer.step, timer.data)
            return False
        message = client_message(
            lead, f"{kind}:{timer.timer_id}:{timer.step}:{timer.data.get('at', '')}", kind, text
        )
        consent = kind not in MARKETING_KINDS or self.store.contacts.get(lead.contact_id).marketing_consent
        try:
            path = self.messenger.reach_client(lead, message, consent=consent)
        except SendError:
            self.store.timers.reschedule(timer.timer_id, now + timedelta(minutes=10), timer.step, timer.data)
            return False
        failpoints.hit("remind.after_send")
        what = KIND_NAMES.get(kind, kind)
        problem = {
            "window_closed": f"Клиент не писал в WhatsApp больше суток: {what} не доставлено "
            "(нет шаблона и SMS). Свяжитесь с ним сами.",
            "failed": f"Не удалось отправить клиенту {what}. Свяжитесь с ним сами.",
        }.get(path)
        if problem:
            self.messenger.to_owner(lead, f"owner_note:{timer.timer_id}:{timer.step}", problem)
        metrics.add_metric(name=f"{kind.capitalize()}Sent", unit="Count", value=1)
        return True

    def _appointment(self, timer: Timer, now: datetime) -> None:
        lead = self.store.leads.get(timer.lead_id or "")
        if (
            lead is None
            or lead.status not in lifecycle.BOOKED
            or not lead.appointment_at
            or lead.appointment_at.isoformat() != timer.data.get("at")
            or lead.appointment_at <= now  # a run that came too late: no reminder after the visit
        ):
            self.store.timers.cancel(timer.timer_id)
            return
        service = self.business.service(lead.service)
        english = lead.language == "en"
        texts = self.business.messages.in_language(lead.language)
        service_name = _named(service, english) or ("a visit" if english else "визит")
        local = lead.appointment_at.astimezone(self.business.tz)
        day = describe_day(local.date(), now.astimezone(self.business.tz).date(), lead.language)
        at = "at" if english else "в"
        if lead.client_address()[0] == "sms":
            # One SMS part (70 Cyrillic characters): the short template, trimmed if a name is long.
            short_when = f"{day if ',' not in day else f'{local:%d.%m}'} {at} {local:%H:%M}"
            text = fit_one_segment(texts.reminder_sms.format(service=service_name, when=short_when))
        else:
            text = texts.reminder.format(service=service_name, when=f"{day} {at} {local:%H:%M}")
        if self._to_client(timer, lead, "reminder", text, now):
            self.store.timers.cancel(timer.timer_id)

    def _nudge(self, timer: Timer, now: datetime) -> None:
        lead = self.store.leads.get(timer.lead_id or "")
        since = timer.data.get("since")
        if (
            lead is None
            or lead.status in CLOSED_STATUSES
            or lead.appointment_at
            or lead.handed_over
            or (since and lead.last_message_at.isoformat() != since)  # the client wrote: sequence stops
        ):
            self.store.timers.cancel(timer.timer_id)
            return
        days = self.business.reminders.nudge_after_days
        service = self.business.service(lead.service)
        if timer.step < len(days):
            text = self.business.messages.in_language(lead.language).nudge.format(
                service_part=_service_part(service, lead.language)
            )
            if not self._to_client(timer, lead, "nudge", text, now):
                return
            later = (
                days[timer.step + 1]
                if timer.step + 1 < len(days)
                else self.business.reminders.nurture_after_days
            )
            self.store.timers.reschedule(
                timer.timer_id, lead.last_message_at + timedelta(days=later), timer.step + 1, timer.data
            )
            return
        # Closed as lost: the contact's next message opens a new lead, the owner gets the slot back.
        handed = self.leads.apply(
            lead.lead_id, lambda current: lifecycle.lose(current, "nurture"), known=lead
        )
        if handed is not None and handed.changed:
            self.crm.update_status(handed.lead)
            logger.info("nurture hand-off", extra={"lead_id": lead.lead_id})
        self.store.timers.cancel(timer.timer_id)

    def _winback(self, timer: Timer, now: datetime) -> None:
        lead = self.store.leads.get(timer.lead_id or "")
        if lead is None or lead.status != LeadStatus.no_show:
            self.store.timers.cancel(timer.timer_id)
            return
        service = self.business.service(lead.service)
        if (
            lead.channel in ("call", "form", "sms")
            and not self.store.contacts.get(lead.contact_id).marketing_consent
        ):
            self.store.timers.cancel(timer.timer_id)  # marketing by SMS only with consent
            return
        text = self.business.messages.in_language(lead.language).winback.format(
            service_part=_service_part(service, lead.language)
        )
        if self._to_client(timer, lead, "winback", text, now):
            self.store.timers.cancel(timer.timer_id)

    # ------------------------------------------------------------------ the owner's digest
    def _digest(self, timer: Timer, now: datetime) -> None:
        # The 24 hours up to the scheduled time (not ``now``, not the calendar day): a late run
        # still reports its own day under its own id, and leads after the evening digest land in
        # the next one instead of in none.
        until = timer.due
        since = until - timedelta(days=1)
        local_day = until.astimezone(self.business.tz).date()
        leads = [
            lead
            for lead in self.store.leads.received_between(since.date(), until.date())
            if since <= lead.received_at < until
        ]
        text = digest_text(compute_kpis(leads, tz=self.business.tz), local_day, self.business)
        readers = [s.id for s in self.business.staff if s.active and s.role in ("owner", "manager", "senior")]
        for staff_id in readers or ["owner"]:
            self.messenger.to_staff(staff_id, None, f"digest:{local_day}:{staff_id}", "digest", text)
        self.store.timers.reschedule(
            timer.timer_id, next_digest_at(self.business, now + timedelta(minutes=1)), 0
        )

    # ------------------------------------------------------------------ retention
    def _retention(self, timer: Timer, now: datetime) -> None:
        """Once a day: leads past the retention period keep only their numbers (152-FZ)."""
        from leadflow.steps.privacy import Privacy

        through = timer.data.get("through")
        done = Privacy(self.store, self.crm, self.business).expire(
            datetime.fromisoformat(through) if through else None, now
        )
        self.store.timers.reschedule(
            timer.timer_id, now + timedelta(days=1), 0, {"through": done.isoformat()}
        )


def _named(service: Service | None, english: bool) -> str | None:
    """The service as said inside a sentence: «маникюр», "gel manicure"."""
    if service is None:
        return None
    return (service.name_en or service.name) if english else service.name.lower()


def _service_part(service: Service | None, language: str) -> str:
    """« на маникюр» / " for a manicure" in «Подобрать вам удобное время{service_part}?»."""
    name = _named(service, language == "en")
    if not name:
        return ""
    return f" for {name}" if language == "en" else f" на {name}"
