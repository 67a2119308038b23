"""Real booking in the conversation: offer free slots near the client's wish (held for a while so
two clients offered one slot cannot both take it), book the one the client picks, confirm it with
the day, time, master, address and payment — and when somebody else was faster, offer the next.

Also the one place every booking is confirmed to the client, whoever made it (the bot, «Записан»,
`leadflow book`, the CRM): the confirmation is an exactly-once message keyed by the visit's time,
so a redelivery sends nothing and a move sends a new one. With PUBLIC_BASE_URL set it carries a
«добавить в календарь» link, /ics/<token>.ics: one unguessable token per lead, kept on a move (the
file then shows the new time), answered by the panel function (steps/panel/views.py).
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

from leadflow import clock, failpoints
from leadflow.adapters.booking import BookingSystem, BookingUnavailable, SlotTaken
from leadflow.adapters.messenger import Messenger
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain import lifecycle
from leadflow.domain.booking_words import cancellation_text, confirmation_text, offer_text
from leadflow.domain.cards import lead_label
from leadflow.domain.models import CLOSED_STATUSES, Intent, Lead, OfferedSlot
from leadflow.domain.schedule import Offer, Slot, bookable_duration, find_offer, picked_slot
from leadflow.observability import logger, metrics
from leadflow.steps.leads import LeadChanges

HOLD_ROUNDS = 5  # offers tried when other clients hold the nearest slots
CALENDAR_LINK_DAYS = 30  # a calendar link answers until a month after the visit


def _slot(offered: OfferedSlot) -> Slot:
    return Slot(offered.start, offered.master, offered.duration_min, offered.ref, offered.service)


def _offered(slot: Slot) -> OfferedSlot:
    return OfferedSlot(
        start=slot.start,
        master=slot.master,
        duration_min=slot.duration_min,
        ref=slot.ref,
        service=slot.service,
    )


class Bookings:
    def __init__(
        self,
        store: Store,
        messenger: Messenger,
        business: BusinessConfig,
        system: BookingSystem | None,
        public_base_url: str | None = None,
    ):
        self.public_base_url = public_base_url  # where the «добавить в календарь» link points
        self.store = store
        self.messenger = messenger
        self.business = business
        self.system = system
        self.leads = LeadChanges(store, business)

    # ------------------------------------------------------------------ the conversation
    def wants_offer(self, lead: Lead) -> bool:
        service = self.business.service(lead.service)
        return (
            self.system is not None
            and lead.intent == Intent.booking
            and lead.status not in CLOSED_STATUSES
            and lead.appointment_at is None
            and not lead.handed_over
            and lead.preferred_date is not None
            and bookable_duration(service) is not None
        )

    def pick(
        self, lead: Lead, text: str, now: datetime, today: date, *, unsaved: bool
    ) -> tuple[Lead, str] | None:
        """(the lead, the reply) when the message picks an offered slot; None when it picks none."""
        if self.system is None or not lead.offered or lead.appointment_at is not None:
            return None
        offered = [_slot(o) for o in lead.offered]
        chosen = picked_slot(text, offered)
        if chosen is None:
            return None
        try:
            booked = self.system.book(chosen, lead, now)
        except SlotTaken:
            metrics.add_metric(name="SlotRaceLost", unit="Count", value=1)
            texts = self.business.messages.in_language(lead.language)
            self.system.release([s for s in offered if s != chosen], lead.lead_id)
            near = (chosen.start.astimezone(self.business.tz).date(), f"{chosen.start:%H:%M}")
            lead, again = self.offer(lead, now, today, unsaved=unsaved, near=near, besides=chosen)
            return lead, f"{texts.slot_taken} {again}"
        failpoints.hit("booking.after_book")  # booked in the calendar, not yet on the lead
        self.system.release([s for s in offered if s != chosen], lead.lead_id, keep=chosen)
        change = lambda current: lifecycle.book_slot(current, chosen.start, chosen.master, booked.ref, now)  # noqa: E731
        if unsaved:
            lead = change(lead) or lead
        else:
            result = self.leads.apply(lead.lead_id, change, known=lead)
            lead = result.lead if result else lead
            self.store.timers.cancel(f"sla#{lead.lead_id}")
            self.store.timers.cancel(f"route_wait#{lead.lead_id}")
            self.leads.schedule_booking(lead, clock.now())
        metrics.add_metric(name="SlotsBooked", unit="Count", value=1)
        logger.info("slot booked", extra={"lead_id": lead.lead_id, "master": chosen.master})
        lead, url = self.calendar_link(lead, unsaved=unsaved)
        return lead, confirmation_text(lead, self.business, today, calendar_url=url) or ""

    def offer(
        self, lead: Lead, now: datetime, today: date, *, unsaved: bool,
        near: tuple[date, str] | None = None, besides: Slot | None = None,
    ) -> tuple[Lead, str]:  # fmt: skip
        """(the lead with its offer, the sentence offering it). ``near``: (day, time) to look around
        instead of the lead's wish (the slot just lost); ``besides``: a slot not to offer again."""
        assert self.system is not None
        service = self.business.service(lead.service)
        assert service is not None
        system = self.system
        cache: dict[date, list[Slot]] = {}
        skip: set[tuple[datetime, str]] = set()
        if besides is not None:
            skip.add((besides.start, besides.master))

        def slots_on(day: date) -> list[Slot]:
            if day not in cache:
                cache[day] = system.free_slots(service, day, now, lead.branch, lead.lead_id)
            return [s for s in cache[day] if (s.start, s.master) not in skip]

        wished = near[0] if near else lead.preferred_date
        assert wished is not None
        offer: Offer | None = None
        for _ in range(HOLD_ROUNDS):
            found = find_offer(
                self.business, service, wished, today, slots_on,
                wish_time=near[1] if near else lead.preferred_time,
                window=None if near else lead.preferred_window, master=lead.master,
            )  # fmt: skip
            if found is None:
                break
            held = [s for s in found.slots if system.hold(s, lead.lead_id, now)]
            if held:
                offer = Offer(found.day, held, found.on_wished_day)
                break
            skip.update((s.start, s.master) for s in found.slots)  # other clients hold them: look further
        previous = [_slot(o) for o in lead.offered]
        slots = [_offered(s) for s in offer.slots] if offer else []
        stale = [s for s in previous if s not in (offer.slots if offer else [])]
        if stale:
            system.release(stale, lead.lead_id)
        if unsaved:
            lead = lifecycle.offer_slots(lead, slots) or lead
        else:
            result = self.store.leads.change(
                lead.lead_id, lambda current: lifecycle.offer_slots(current, slots), known=lead
            )
            lead = result.lead if result else lead
        return lead, offer_text(offer, lead, self.business, today, wished)

    def cancel(self, lead: Lead) -> None:
        """A cancelled visit gives its time back to the calendar (idempotent)."""
        if self.system is None or not lead.booking_ref:
            return
        try:
            self.system.cancel(lead)
        except BookingUnavailable as exc:
            logger.warning(
                "booking not cancelled in the calendar", extra={"lead_id": lead.lead_id, "error": str(exc)}
            )

    # ------------------------------------------------------------------ confirmations
    def confirm_to_client(self, lead: Lead, today: date | None = None) -> None:
        """The confirmation of the lead's booking, once per visit time (a move confirms again)."""
        if lead.appointment_at is None or self.system is None:
            return  # without real booking the administrator confirms, as before
        today = today or clock.now().astimezone(self.business.tz).date()
        if confirmation_text(lead, self.business, today) is None:
            return
        if lead.client_address()[0] == "sms" and not lead.contact.phone:
            return
        lead, url = self.calendar_link(lead)
        text = confirmation_text(lead, self.business, today, calendar_url=url) or ""
        key = f"booked:{lead.lead_id}:{lead.appointment_at.astimezone(self.business.tz):%Y%m%dT%H%M}"
        self.messenger.to_client(lead, key, "booking_confirmation", text)

    def cancelled_elsewhere(self, lead: Lead, *, release: bool, today: date | None = None) -> None:
        """A visit cancelled in the CRM or the booking system (the lead as it was, still booked): the
        client is told, once per visit time — the message is claimed by that key, so a duplicate
        webhook or a retry after a crash sends nothing more — and with ``release`` the calendar's
        time is given back (not when the booking system itself cancelled it). Called before the
        lead's write, so a crash in between repeats this harmlessly instead of skipping it."""
        if lead.appointment_at is None:
            return
        if release:
            self.cancel(lead)
        if self.system is None:
            return  # without real booking the administrator tells the client, as before
        if lead.client_address()[0] == "sms" and not lead.contact.phone:
            return
        today = today or clock.now().astimezone(self.business.tz).date()
        text = cancellation_text(lead, self.business, today)
        if text is None:
            return
        key = f"cancelled:{lead.lead_id}:{lead.appointment_at.astimezone(self.business.tz):%Y%m%dT%H%M}"
        self.messenger.to_client(lead, key, "booking_cancelled", text)

    def take_crm_time(self, lead: Lead, at: datetime, master: str, now: datetime) -> str | None:
        """A visit booked in the CRM takes the master's time in the built-in calendar, so the bot
        does not offer it (a move gives the old time back). The calendar's ref of the visit; None
        when there is nothing to take (no built-in calendar or no such master); "" when the time is
        another client's — the CRM is the truth then: the owner is told about the clash and a time
        this visit held before is given back."""
        if self.system is None or self.system.name != "builtin":
            return None  # YCLIENTS keeps its own calendar; records made there come by webhook
        if self.business.staff_member(master) is None:
            return None
        service = self.business.service(lead.service)
        minutes = service.duration_min if service and service.duration_min else self.business.booking.step_min
        slot = Slot(at, master, minutes, service=service.id if service else None)
        try:
            booked = self.system.book(slot, lead, now)
        except SlotTaken:
            name = self.business.staff_member(master).name  # type: ignore[union-attr]
            local = at.astimezone(self.business.tz)
            self.messenger.to_owner(
                lead, f"owner_note:crm_clash:{lead.lead_id}:{local:%Y%m%dT%H%M}",
                f"В CRM запись на {local:%d.%m %H:%M}, мастер — {name}, но в календаре бота это время "
                f"уже занято другим клиентом. Проверьте запись: {lead_label(self.business, lead)}.",
            )  # fmt: skip
            if lead.booking_ref:
                self.system.cancel(lead)  # moved onto a taken time: the old one is free all the same
            return ""
        except BookingUnavailable as exc:
            logger.warning(
                "crm booking not taken in the calendar", extra={"lead_id": lead.lead_id, "error": str(exc)}
            )
            return None
        if lead.booking_ref and lead.booking_ref != booked.ref:
            self.system.cancel(lead)  # a move: the old time is given back (only the old visit's cells)
        return booked.ref

    def calendar_link(self, lead: Lead, *, unsaved: bool = False) -> tuple[Lead, str | None]:
        """(the lead with its calendar token, «<PUBLIC_BASE_URL>/ics/<token>.ics»); no link without
        PUBLIC_BASE_URL or an appointment. The token is made once per lead and kept on a move; the
        link's expiry follows the visit."""
        if not self.public_base_url or lead.appointment_at is None:
            return lead, None
        token = lead.calendar_token
        if token is None:
            fresh = secrets.token_urlsafe(24)
            if unsaved:  # the caller saves the lead, token included
                lead.calendar_token = token = fresh
            else:
                result = self.store.leads.change(
                    lead.lead_id, lambda current: _set_calendar_token(current, fresh), known=lead
                )
                lead = result.lead if result else lead
                token = lead.calendar_token or fresh
        expires = lead.appointment_at + timedelta(days=CALENDAR_LINK_DAYS)
        self.store.panel.keep_calendar_link(token, lead.lead_id, expires)
        return lead, f"{self.public_base_url.rstrip('/')}/ics/{token}.ics"

    # ------------------------------------------------------------------ staff bookings
    def check_staff_booking(self, lead: Lead, at: datetime, master: str | None, now: datetime) -> str | None:
        """Why a booking staff make («Записан», `leadflow book`) cannot take the calendar's time; None
        when it is free (and then it is taken for the lead) or there is no calendar to ask."""
        if self.system is None:
            return None
        service = self.business.service(lead.service)
        duration = bookable_duration(service)
        if duration is None:
            return None
        candidates = [master] if master else []
        candidates += [m for m in (lead.booked_master, lead.master, lead.owner) if m and m not in candidates]
        from leadflow.domain.schedule import can_do

        masters = [
            m
            for m in candidates
            if (member := self.business.staff_member(m)) and service and can_do(member, service)
        ]
        if not masters:
            return None
        who = masters[0]
        slot = Slot(at, who, duration, service=service.id if service else None)
        try:
            booked = self.system.book(slot, lead, now)
        except SlotTaken:
            name = self.business.staff_member(who).name  # type: ignore[union-attr]
            return f"у мастера {name} это время уже занято ({at.astimezone(self.business.tz):%d.%m %H:%M}, {duration} мин)"
        except BookingUnavailable as exc:
            logger.warning(
                "booking by staff: calendar unavailable", extra={"lead_id": lead.lead_id, "error": str(exc)}
            )
            return "календарь записи сейчас не отвечает, попробуйте через минуту"
        if lead.booking_ref and lead.booking_ref != booked.ref:
            self.system.cancel(lead)  # a move: the old time is given back
        self.store.leads.change(lead.lead_id, lambda current: _set_booking(current, who, booked.ref))
        return None


def _set_booking(lead: Lead, master: str, ref: str) -> Lead | None:
    if lead.booked_master == master and lead.booking_ref == ref:
        return None
    lead.booked_master = master
    lead.booking_ref = ref
    return lead


def _set_calendar_token(lead: Lead, token: str) -> Lead | None:
    if lead.calendar_token is not None:
        return None  # somebody else made it first: theirs is kept
    lead.calendar_token = token
    return lead
