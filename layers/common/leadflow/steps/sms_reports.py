"""SMS delivery reports: the outbound message learns whether it arrived, and a failed SMS is
not left at that — the text goes through the client's messenger, or the owner is told."""

from __future__ import annotations

from leadflow.adapters.notify import to_client, to_owner
from leadflow.adapters.outbound import Outbound
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain.models import DeliveryReport
from leadflow.observability import logger, metrics

MESSENGERS = ("telegram", "whatsapp", "instagram", "vk")


def apply_delivery_report(
    store: Store, outbound: Outbound, business: BusinessConfig, report: DeliveryReport
) -> None:
    sent = store.conversation.by_provider_id(report.channel, report.provider_message_id)
    if sent is None:
        logger.info("delivery report for a message we do not know", extra={"status": report.status})
        return
    store.conversation.set_delivery(sent["lead_id"], sent["id"], report.status, report.error)
    if report.status != "failed":
        return
    metrics.add_metric(name="SmsUndelivered", unit="Count", value=1)
    lead = store.leads.get(sent["lead_id"])
    if lead is None:
        return
    if lead.channel in MESSENGERS:  # the client's own messenger instead
        to_client(outbound, lead, f"{sent['id']}:fallback", sent["kind"], sent["text"])
        return
    note = (
        f"SMS клиенту {lead.contact.name or ''} не доставлено ({report.error or 'ошибка оператора'}). "
        f"Позвоните: {lead.contact.phone or '—'} (лид {lead.lead_id})."
    )
    to_owner(outbound, store, business, lead, f"{sent['id']}:undelivered", note)
