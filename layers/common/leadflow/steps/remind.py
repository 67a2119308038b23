"""Reminders, nudges, nurture hand-off, no-show win-back and the daily digest (the remind
function, every few minutes). All of it is due-time timers on the ``remind`` queue.

Client messages respect quiet hours in the business time zone: a message due at night waits
for morning. Sequences stop the moment the client replies or books.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from leadflow.adapters.channels.base import SendError
from leadflow.adapters.delivery import MARKETING_KINDS, deliver_to_client
from leadflow.adapters.notify import client_message, to_owner
from leadflow.adapters.store import Store
from leadflow.adapters.store.timers import Timer
from leadflow.business import BusinessConfig, clock_time
from leadflow.clock import iso
from leadflow.domain.models import CLOSED_STATUSES, Lead, LeadStatus, OutboundMessage
from leadflow.domain.replies import describe_day
from leadflow.observability import logger, metrics


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


def schedule_booking_reminders(store: Store, business: BusinessConfig, lead: Lead, now: datetime) -> None:
    """After a booking or a no-show: appointment reminders, or the win-back offer."""
    store.timers.cancel(f"nudge#{lead.lead_id}")
    if lead.status == LeadStatus.no_show:
        due = now + timedelta(days=business.reminders.winback_after_days)
        store.timers.put(
            Timer(f"winback#{lead.lead_id}", "remind", "winback", iso(due), lead.lead_id), only_if_new=True
        )
        return
    if not lead.appointment_at:
        return
    for hours in business.reminders.before_appointment_h:
        due = lead.appointment_at - timedelta(hours=hours)
        if due <= now:
            continue
        store.timers.put(
            Timer(
                f"appt#{lead.lead_id}#{hours}",
                "remind",
                "appointment",
                iso(due),
                lead.lead_id,
                data={"at": lead.appointment_at.isoformat(), "hours": hours},
            )
        )


def schedule_nudges(store: Store, business: BusinessConfig, lead: Lead) -> None:
    days = business.reminders.nudge_after_days
    if not days or lead.status in CLOSED_STATUSES or lead.appointment_at:
        return
    due = lead.last_message_at + timedelta(days=days[0])
    store.timers.put(
        Timer(
            f"nudge#{lead.lead_id}",
            "remind",
            "nudge",
            iso(due),
            lead.lead_id,
            data={"since": lead.last_message_at.isoformat()},
        ),
        only_if_new=True,
    )


def next_digest_at(business: BusinessConfig, now: datetime) -> datetime:
    local = now.astimezone(business.tz)
    at = datetime.combine(local.date(), clock_time(business.reminders.digest_at), business.tz)
    return at if at > local else at + timedelta(days=1)


class Reminders:
    def __init__(self, store: Store, outbound, crm, business: BusinessConfig):
        self.store = store
        self.outbound = outbound
        self.crm = crm
        self.business = business

    def run(self, now: datetime) -> int:
        self.store.timers.put(
            Timer("digest", "remind", "digest", iso(next_digest_at(self.business, now))), only_if_new=True
        )
        done = 0
        for timer in self.store.timers.due("remind", now):
            if not self.store.timers.claim(timer, now):
                continue
            handler = {
                "appointment": self._appointment,
                "nudge": self._nudge,
                "winback": self._winback,
                "digest": self._digest,
            }.get(timer.kind)
            if handler is None:
                self.store.timers.cancel(timer.timer_id)
                continue
            handler(timer, now)
            done += 1
        return done

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
        consent = kind not in MARKETING_KINDS or bool(
            self.store.contacts.get(lead.contact_id).get("marketing_consent")
        )
        try:
            path = deliver_to_client(self.outbound, self.business, lead, message, consent=consent)
        except SendError:
            self.store.timers.reschedule(timer.timer_id, now + timedelta(minutes=10), timer.step, timer.data)
            return False
        problem = {
            "window_closed": f"Клиент не писал в WhatsApp больше суток: сообщение «{kind}» не доставлено "
            "(нет шаблона и SMS). Свяжитесь с ним сами.",
            "failed": f"Не удалось отправить клиенту ({message.channel}) сообщение «{kind}». Свяжитесь с ним сами.",
        }.get(path)
        if problem:
            note_id = f"owner_note:{timer.timer_id}:{timer.step}"
            to_owner(self.outbound, self.store, self.business, lead, note_id, problem)
        metrics.add_metric(name=f"{kind.capitalize()}Sent", unit="Count", value=1)
        return True

    def _appointment(self, timer: Timer, now: datetime) -> None:
        lead = self.store.leads.get(timer.lead_id or "")
        if (
            lead is None
            or lead.status not in (LeadStatus.booked, LeadStatus.confirmed)
            or not lead.appointment_at
            or lead.appointment_at.isoformat() != timer.data.get("at")
            or lead.appointment_at <= now  # a run that came too late: no reminder after the visit
        ):
            self.store.timers.cancel(timer.timer_id)
            return
        service = self.business.service(lead.service)
        local = lead.appointment_at.astimezone(self.business.tz)
        when = f"{describe_day(local.date(), now.astimezone(self.business.tz).date())} в {local:%H:%M}"
        from leadflow.adapters.notify import client_channel

        if client_channel(lead)[0] == "sms":
            # One SMS part (70 Cyrillic characters): the short template, trimmed if a name is long.
            from leadflow.adapters.channels.sms import fit_one_segment

            day = describe_day(local.date(), now.astimezone(self.business.tz).date())
            short_when = f"{day if ',' not in day else f'{local:%d.%m}'} в {local:%H:%M}"
            template = self.business.messages.reminder_sms
            text = fit_one_segment(
                template.format(service=service.name.lower() if service else "визит", when=short_when)
            )
        else:
            template = self.business.messages.reminder
            text = template.format(service=service.name.lower() if service else "визит", when=when)
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
            text = self.business.messages.nudge.format(
                service_part=f" на {service.name.lower()}" if service else ""
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
        handed: list[Lead] = []
        nurtured = self.store.leads.mutate(lead.lead_id, lambda current: _hand_to_nurture(current, handed))
        if nurtured is not None and handed:
            # Closed as lost: the contact's next message opens a new lead, the owner gets the slot back.
            self.store.contacts.close_lead(nurtured.contact_id, nurtured.lead_id)
            if nurtured.owner:
                self.store.staff.release_lead(nurtured.owner)
            self.crm.update_status(nurtured)
            logger.info("nurture hand-off", extra={"lead_id": lead.lead_id})
        self.store.timers.cancel(timer.timer_id)

    def _winback(self, timer: Timer, now: datetime) -> None:
        lead = self.store.leads.get(timer.lead_id or "")
        if lead is None or lead.status != LeadStatus.no_show:
            self.store.timers.cancel(timer.timer_id)
            return
        service = self.business.service(lead.service)
        contact = self.store.contacts.get(lead.contact_id)
        if lead.channel in ("call", "form", "sms") and not contact.get("marketing_consent"):
            self.store.timers.cancel(timer.timer_id)  # marketing by SMS only with consent
            return
        text = self.business.messages.winback.format(
            service_part=f" на {service.name.lower()}" if service else ""
        )
        if self._to_client(timer, lead, "winback", text, now):
            self.store.timers.cancel(timer.timer_id)

    # ------------------------------------------------------------------ the owner's digest
    def _digest(self, timer: Timer, now: datetime) -> None:
        from leadflow.domain.kpi import compute_kpis, digest_text

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
        text = digest_text(compute_kpis(leads, tz=self.business.tz), local_day)
        managers = [s.id for s in self.business.staff if s.active and s.role in ("manager", "senior")] or [
            "owner"
        ]
        from leadflow.adapters.notify import staff_chat

        for staff_id in managers:
            self.outbound.send(
                OutboundMessage(
                    id=f"digest:{local_day}:{staff_id}",
                    channel="telegram",
                    to=staff_chat(self.store, self.business, staff_id),
                    kind="digest",
                    text=text,
                )
            )
        self.store.timers.reschedule(
            timer.timer_id, next_digest_at(self.business, now + timedelta(minutes=1)), 0
        )


def _hand_to_nurture(lead: Lead, handed: list[Lead]) -> Lead | None:
    handed.clear()  # mutate retries on conflicts: only the attempt that was saved counts
    if "nurture" in lead.tags or lead.status in CLOSED_STATUSES:
        return None
    lead.tags = [*lead.tags, "nurture"]
    lead.status = LeadStatus.lost
    handed.append(lead)
    return lead
