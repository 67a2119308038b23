"""Addressing a message to a lead's client or to a staff member — the two recipients every step
writes to — so each step says only what it sends, not how it reaches them."""

from __future__ import annotations

from leadflow.adapters.outbound import Delivery, Outbound
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain.models import Lead, OutboundMessage


def client_channel(lead: Lead) -> tuple[str, str]:
    """Where a message to the client goes: its own channel, or SMS for calls and forms."""
    if lead.channel in ("call", "form"):
        return "sms", lead.contact.phone or lead.chat_id
    return lead.channel, lead.chat_id


def staff_chat(store: Store, business: BusinessConfig, staff_id: str) -> str:
    """The staff member's Telegram chat (onboarding), else the config's, else their id (outbox)."""
    state = store.staff.state([staff_id])[staff_id]
    member = business.staff_member(staff_id)
    return str(
        state.get("telegram_chat_id") or (member.telegram_chat_id if member else None) or f"staff:{staff_id}"
    )


def client_message(lead: Lead, message_id: str, kind: str, text: str) -> OutboundMessage:
    channel, to = client_channel(lead)
    return OutboundMessage(
        id=message_id,
        channel=channel,
        to=to,
        lead_id=lead.lead_id,
        kind=kind,
        text=text,
        business_connection_id=lead.business_connection_id,
    )


def to_client(outbound: Outbound, lead: Lead, message_id: str, kind: str, text: str) -> Delivery:
    return outbound.send(client_message(lead, message_id, kind, text))


def to_owner(
    outbound: Outbound, store: Store, business: BusinessConfig, lead: Lead, message_id: str, text: str
) -> Delivery | None:
    """A note to the lead's owner about their lead (none while it has no owner)."""
    if not lead.owner:
        return None
    return to_staff(outbound, store, business, lead.owner, lead, message_id, "owner_note", text)


def to_staff(
    outbound: Outbound, store: Store, business: BusinessConfig, staff_id: str, lead: Lead | None,
    message_id: str, kind: str, text: str,
) -> Delivery:  # fmt: skip
    return outbound.send(
        OutboundMessage(
            id=message_id,
            channel="telegram",
            to=staff_chat(store, business, staff_id),
            lead_id=lead.lead_id if lead else None,
            kind=kind,
            text=text,
        )
    )
