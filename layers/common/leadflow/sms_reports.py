"""SMS delivery reports: the outbound message learns whether it arrived, and a failed SMS is
not left at that — the text goes through the client's messenger, or the owner is told."""

from __future__ import annotations

from leadflow.config import BusinessConfig
from leadflow.models import DeliveryReport, OutboundMessage
from leadflow.observability import logger, metrics
from leadflow.outbound import Outbound
from leadflow.store import Store

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
    if lead.channel in MESSENGERS:
        outbound.send(
            OutboundMessage(
                id=f"{sent['id']}:fallback",
                channel=lead.channel,
                to=lead.chat_id,
                lead_id=lead.lead_id,
                kind=sent["kind"],
                text=sent["text"],
                business_connection_id=lead.business_connection_id,
            )
        )
        return
    if lead.owner:
        from leadflow.notify import staff_chat

        outbound.send(
            OutboundMessage(
                id=f"{sent['id']}:undelivered",
                channel="telegram",
                to=staff_chat(store, business, lead.owner),
                lead_id=lead.lead_id,
                kind="owner_note",
                text=(
                    f"SMS клиенту {lead.contact.name or ''} не доставлено ({report.error or 'ошибка оператора'}). "
                    f"Позвоните: {lead.contact.phone or '—'} (лид {lead.lead_id})."
                ),
            )
        )
