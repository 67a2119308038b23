"""Status changes reported back by the CRM (Bitrix24 outbound events, amoCRM webhooks) applied to our leads:
an accepted lead stops its SLA clock, a booking gets reminders, a no-show gets a win-back, and a
lead closed in the CRM is closed here — its owner's capacity comes back like any other close."""

from __future__ import annotations

from datetime import datetime

from leadflow import clock, failpoints
from leadflow.adapters.booking.yclients import record_time
from leadflow.adapters.crm import Crm
from leadflow.adapters.payments import YookassaPayments
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain import lifecycle
from leadflow.domain.models import CLOSED_STATUSES, CrmEvent, Lead, LeadStatus
from leadflow.domain.phones import to_e164
from leadflow.observability import logger
from leadflow.steps.booking import Bookings
from leadflow.steps.leads import LeadChanges


class CrmSync:
    def __init__(
        self, store: Store, crm: Crm, business: BusinessConfig, bookings: Bookings | None = None,
        payments: YookassaPayments | None = None,
    ):  # fmt: skip
        self.store = store
        self.crm = crm
        self.business = business
        self.leads = LeadChanges(store, business)
        self.bookings = bookings
        self.payments = payments

    def apply(self, event: CrmEvent) -> Lead | None:
        """Apply the event; the lead whose card must be redrawn for it (a payment), else None."""
        if event.event.startswith("PAYMENT_SUCCEEDED:"):
            return self._payment(event)
        if event.event.startswith("YCLIENTS_RECORD_"):
            self._yclients_record(event)
            return None
        self._crm_record(event)
        return None

    def _crm_record(self, event: CrmEvent) -> None:
        lead = self.store.leads.by_crm_id(event.crm_id)
        if lead is None:
            logger.info("crm event for a record we do not track", extra={"event": event.event})
            return
        if event.event.endswith("DELETE"):
            status: str | None = LeadStatus.lost
        else:
            status = self.crm.status_of(lead)
            lead = self._booking_from_crm(lead) or lead
        if status is None:
            return
        now = clock.now()
        if (
            status in (LeadStatus.lost, LeadStatus.cancelled)
            and lead.status in lifecycle.BOOKED
            and lead.appointment_at is not None
            and lead.appointment_at > now
            and lifecycle.can_move(lead, LeadStatus(status))
            and self.bookings is not None
        ):
            # a booked visit moved to a lost stage (or the record deleted) in the CRM
            self.bookings.cancelled_elsewhere(lead, release=True)
        result = self.leads.apply(
            lead.lead_id, lambda current: lifecycle.set_from_crm(current, LeadStatus(status), now), known=lead
        )
        if result is None or not result.changed:
            return
        changed = result.lead
        if changed.accepted_at:
            self.store.timers.cancel(f"sla#{changed.lead_id}")
        if changed.status in (LeadStatus.booked, LeadStatus.no_show):
            self.leads.schedule_booking(changed, now)
        self.crm.mirror_status(changed)  # the owner's sheet (crm.mirror_sheet) follows the CRM
        logger.info("crm status applied", extra={"lead_id": changed.lead_id, "status": changed.status})

    def _booking_from_crm(self, lead: Lead) -> Lead | None:
        """A visit time set (or moved) in the record's date field (``crm.booking_field``): the lead is
        booked for it, the 24 h / 2 h reminders follow it, and the client is told."""
        field = self.business.crm.booking_field
        read = getattr(self.crm, "booking_in_crm", None)
        if not field or read is None or lead.status in CLOSED_STATUSES:
            return None
        found = read(lead, field)
        now = clock.now()
        if found is None:
            return None
        if found.at is None:
            return self._cleared_in_crm(lead, now)
        at = found.at
        if at <= now:
            return None
        master = self._staff_of_crm_user(found.responsible) or lead.booked_master or lead.owner
        if not (at == lead.appointment_at and lead.booked_in_crm and master == lead.booked_master):
            ref = self.bookings.take_crm_time(lead, at, master, now) if self.bookings and master else None
            result = self.leads.apply(
                lead.lead_id,
                lambda current: lifecycle.book_from_crm(current, at, master, ref, now),
                known=lead,
            )
            if result is None or result.lead.appointment_at != at:
                return None
            lead = result.lead
            failpoints.hit("crm_sync.after_booking_write")
        # Also when the lead shows this booking already: an attempt that died here left the rest
        # undone. Each is safe to repeat (reminders only ahead of now, the confirmation claimed once).
        self.store.timers.cancel(f"sla#{lead.lead_id}")
        self.leads.schedule_booking(lead, now)
        if self.bookings is not None:
            self.bookings.confirm_to_client(lead)
        logger.info("booking read from the crm", extra={"lead_id": lead.lead_id})
        return lead

    def _payment(self, event: CrmEvent) -> Lead | None:
        """A ЮKassa notification that the prepayment went through: believed only as far as the
        ЮKassa API confirms it (status succeeded, the same lead in its metadata) when the shop's
        credentials are set; else on the sender's address alone, checked by ingest."""
        _, _, lead_id = event.event.partition(":")
        lead = self.store.leads.get(lead_id)
        if lead is None:
            logger.info("payment for a lead we do not have", extra={"payment": event.crm_id})
            return None
        amount: str | None = None
        if self.payments is not None:
            payment = self.payments.payment(event.crm_id)
            if payment is None or payment.status != "succeeded" or payment.lead_id != lead.lead_id:
                logger.warning(
                    "payment notification not confirmed by ЮKassa",
                    extra={"lead_id": lead.lead_id, "status": payment.status if payment else "unknown"},
                )
                return None
            if payment.amount is not None:
                amount = f"{payment.amount:.2f} {payment.currency or 'RUB'}"
        now = clock.now()
        result = self.leads.apply(
            lead.lead_id, lambda current: lifecycle.mark_paid(current, event.crm_id, amount, now), known=lead
        )
        if result is None:
            return None
        logger.info("prepayment received", extra={"lead_id": lead.lead_id, "new": result.changed})
        return result.lead  # redrawn on a repeat too: the card edit is keyed, a retry repeats it harmlessly

    def _cleared_in_crm(self, lead: Lead, now: datetime) -> Lead | None:
        """The booking field emptied on a visit that came from it: the visit is cancelled (a visit the
        bot or staff booked never had the field set, so an empty field says nothing about it)."""
        if not (
            lead.booked_in_crm
            and lead.status in lifecycle.BOOKED
            and lead.appointment_at is not None
            and lead.appointment_at > now
        ):
            return None
        if self.bookings is not None:
            self.bookings.cancelled_elsewhere(lead, release=True)
        result = self.leads.apply(lead.lead_id, lifecycle.cancel, known=lead)
        if result is None or not result.changed:
            return None
        logger.info("booking cleared in the crm", extra={"lead_id": lead.lead_id})
        return result.lead

    def _staff_of_crm_user(self, user_id: str | None) -> str | None:
        if not user_id or not user_id.isdigit():
            return None
        return next(
            (
                m.id
                for m in self.business.staff
                if m.bitrix24_user_id is not None and m.bitrix24_user_id == int(user_id)
            ),
            None,
        )

    def _yclients_record(self, event: CrmEvent) -> None:
        """A record created, moved or deleted in YCLIENTS: re-read it (the webhook is not trusted) and
        book, move or cancel the lead it belongs to (by the api_id we booked it with, else its phone),
        with reminders and a confirmation like a bot booking."""
        system = self.bookings.system if self.bookings else None
        read = getattr(system, "record", None)
        if read is None:
            logger.info("yclients event without the yclients booking system configured")
            return
        _, _, api_id = event.event.partition(":")
        record = read(event.crm_id)
        deleted = record is None or bool(record.get("deleted"))
        lead = self.store.leads.get(api_id) if api_id else None
        if lead is None and record is not None:
            lead = self._lead_by_phone(record)
        if lead is None or lead.status in CLOSED_STATUSES:
            logger.info("yclients record for no open lead", extra={"record": event.crm_id})
            return
        now = clock.now()
        at = record_time(record, self.business) if record is not None else None
        # attendance -1 is «клиент не пришёл»: marked before the visit it is the desk's cancel
        called_off = record is not None and str(record.get("attendance")) == "-1" and (at is None or at > now)
        if deleted or called_off:
            if lead.booking_ref == event.crm_id and lead.status in lifecycle.BOOKED:
                assert self.bookings is not None
                self.bookings.cancelled_elsewhere(lead, release=False)  # YCLIENTS freed its own time
                self.leads.apply(lead.lead_id, lifecycle.cancel, known=lead)  # its reminders stop with it
            return
        assert record is not None
        if at is None or at <= now:
            return
        staff_id = record.get("staff_id") or (record.get("staff") or {}).get("id")
        master = next(
            (
                m.id
                for m in self.business.staff
                if m.yclients_id is not None and str(m.yclients_id) == str(staff_id)
            ),
            None,
        )
        result = self.leads.apply(
            lead.lead_id,
            lambda current: lifecycle.book_slot(current, at, master, event.crm_id, now),
            known=lead,
        )
        if result is None or result.lead.appointment_at != at or result.lead.booking_ref != event.crm_id:
            return
        failpoints.hit("crm_sync.after_booking_write")
        # Also when the lead showed this record already: an attempt that died here left the rest undone.
        self.store.timers.cancel(f"sla#{lead.lead_id}")
        self.leads.schedule_booking(result.lead, now)
        assert self.bookings is not None
        self.bookings.confirm_to_client(result.lead)

    def _lead_by_phone(self, record: dict) -> Lead | None:
        client = record.get("client") or {}
        phone = to_e164(str(client.get("phone") or "")) if isinstance(client, dict) else None
        if not phone:
            return None
        open_leads = [lead for lead in self.store.leads.with_phone(phone) if lead.is_open]
        return open_leads[-1] if open_leads else None
