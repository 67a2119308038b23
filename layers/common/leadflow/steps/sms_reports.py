"""SMS delivery reports: the outbound message learns whether it arrived, and a failed SMS is
not left at that — the text goes through the client's messenger, or the owner is told."""

from __future__ import annotations

from leadflow.adapters.messenger import Messenger
from leadflow.adapters.store import Store
from leadflow.domain.models import DeliveryReport
from leadflow.observability import logger, metrics

MESSENGERS = ("telegram", "whatsapp", "instagram", "vk")


class SmsReports:
    def __init__(self, store: Store, messenger: Messenger):
        self.store = store
        self.messenger = messenger

    def apply(self, report: DeliveryReport) -> None:
        sent = self.store.conversation.by_provider_id(report.channel, report.provider_message_id)
        if sent is None:
            logger.info("delivery report for a message we do not know", extra={"status": report.status})
            return
        self.store.conversation.set_delivery(sent["lead_id"], sent["id"], report.status, report.error)
        if report.status != "failed":
            return
        metrics.add_metric(name="SmsUndelivered", unit="Count", value=1)
        lead = self.store.leads.get(sent["lead_id"])
        if lead is None:
            return
        if lead.channel in MESSENGERS:  # the client's own messenger instead
            self.messenger.to_client(lead, f"{sent['id']}:fallback", sent["kind"], sent["text"])
            return
        note = (
            f"SMS клиенту {lead.contact.name or ''} не доставлено ({report.error or 'ошибка оператора'}). "
            f"Позвоните: {lead.contact.phone or '—'} (лид {lead.lead_id})."
        )
        self.messenger.to_owner(lead, f"{sent['id']}:undelivered", note)
