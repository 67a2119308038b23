"""Personal data has an end (152-FZ): a person who asks is forgotten (`leadflow forget <phone>`), and
what retention allows to keep is kept only as numbers.

Forgetting a person erases them from leads (the lead stays, anonymised, for the owner's figures),
contacts and their identities, conversations, the inbox's raw payloads, timers, their photos, voice
messages and files in the media bucket, and asks the CRM to delete its records — and says what was
erased and what could not be. (Files also end on their own: the bucket's lifecycle rule.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leadflow.adapters.crm import Crm
from leadflow.adapters.media import MediaBucket
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain import lifecycle
from leadflow.domain.models import ContactRecord, Lead, media_prefix
from leadflow.domain.phones import to_e164
from leadflow.observability import logger

TIMER_KINDS = ("sla", "route_wait", "nudge", "winback")
EXPIRE_DAYS_PER_RUN = 31  # a run catches up at most this many days (a long pause is spread over runs)


@dataclass
class Forgotten:
    leads: int = 0
    messages: int = 0
    contacts: int = 0
    identities: int = 0
    raw_payloads: int = 0
    timers: int = 0
    media_files: int = 0
    media_checked: bool = True  # False: no media bucket known here, so files were not looked for
    crm_problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What a person is told (Russian: the owner or the helper reads it)."""
        done = [
            f"лидов обезличено: {self.leads}",
            f"сообщений удалено: {self.messages}",
            f"контактов удалено: {self.contacts} (идентификаторов: {self.identities})",
            f"исходных запросов удалено: {self.raw_payloads}",
            f"таймеров удалено: {self.timers}",
            f"файлов (фото, голосовые) удалено: {self.media_files}"
            if self.media_checked
            else "файлы (фото, голосовые) не проверены: хранилище файлов не найдено",
        ]
        return done + (
            [f"не удалось: {problem}" for problem in self.crm_problems] or ["CRM: удалено всё, что там было"]
        )


class Privacy:
    def __init__(self, store: Store, crm: Crm, business: BusinessConfig, media: MediaBucket | None = None):
        self.store = store
        self.crm = crm
        self.business = business
        self.media = media

    # ------------------------------------------------------------------ a person asks
    def forget(self, phone: str) -> Forgotten:
        number = to_e164(phone)
        if number is None:
            raise ValueError(f"{phone!r} is not a phone number")
        report = Forgotten()
        contacts: dict[str, ContactRecord] = {}
        owner = self.store.contacts.owner_of(f"phone#{number}")
        if owner:
            contacts[owner] = self.store.contacts.get(owner)
        leads = {lead.lead_id: lead for lead in self.store.leads.with_phone(number)}
        for contact in list(contacts.values()):
            for lead_id in contact.lead_ids - leads.keys():
                found = self.store.leads.get(lead_id)
                if found is not None:
                    leads[lead_id] = found
        for lead in leads.values():
            if lead.contact_id not in contacts and lead.contact.phone == number:
                contacts[lead.contact_id] = self.store.contacts.get(lead.contact_id)
            self._erase_lead(lead, report)
        for contact in contacts.values():
            identities = {f"phone#{number}"} | {f"{lead.channel}#{lead.contact.channel_user_id or lead.chat_id}"
                                                for lead in leads.values() if lead.contact_id == contact.contact_id}  # fmt: skip
            report.identities += self.store.contacts.forget(contact, identities) - 1
            report.contacts += 1
        logger.info("person forgotten", extra={"leads": report.leads, "contacts": report.contacts})
        return report

    def _erase_lead(self, lead: Lead, report: Forgotten) -> None:
        problem = self.crm.forget(lead)
        if problem:
            report.crm_problems.append(problem)
        report.messages += self.store.conversation.delete_lead(lead.lead_id)
        report.raw_payloads += self.store.inbox.delete(lead.message_ids)
        if self.media is not None:
            report.media_files += self.media.delete_prefix(media_prefix(lead.lead_id))
        else:
            report.media_checked = False
        timers = [f"{kind}#{lead.lead_id}" for kind in TIMER_KINDS]
        timers += [f"appt#{lead.lead_id}#{hours}" for hours in self.business.reminders.before_appointment_h]
        self.store.timers.cancel_all(timers)
        report.timers += len(timers)
        if self.store.leads.change(lead.lead_id, lifecycle.anonymised, known=lead) is not None:
            report.leads += 1

    # ------------------------------------------------------------------ retention runs out
    def expire(self, through: datetime | None, now: datetime) -> datetime:
        """Anonymise the leads received on the days retention no longer allows, a few days a run,
        through the by_day index (the cost grows with what is due, not with what is stored). Their
        texts are gone already (the conversation table's TTL). Returns the last day done."""
        cutoff = (now - timedelta(days=self.business.retention.personal_data_days)).date()
        day = (
            (through.date() + timedelta(days=1))
            if through
            else cutoff - timedelta(days=EXPIRE_DAYS_PER_RUN - 1)
        )
        last = min(cutoff, day + timedelta(days=EXPIRE_DAYS_PER_RUN - 1))
        done = 0
        for lead in self.store.leads.received_between(day, last):
            if "anonymised" in lead.tags:
                continue
            self.store.leads.change(lead.lead_id, lifecycle.anonymised, known=lead)
            contact = self.store.contacts.get(lead.contact_id)
            if not contact.recent_openings or max(contact.recent_openings) < now - timedelta(
                days=self.business.retention.personal_data_days
            ):
                self.store.contacts.forget(contact, set())  # nobody came back since: the person goes too
            done += 1
        logger.info("retention", extra={"anonymised": done, "through": last.isoformat()})
        return datetime.combine(last, datetime.min.time(), now.tzinfo)
