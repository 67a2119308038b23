"""Lead cards in the owner's Telegram chat: sent once per owner, edited in place as the lead changes."""

from __future__ import annotations

from leadflow import clock
from leadflow.adapters.messenger import Delivery, Messenger
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain.cards import card_buttons, card_details_key, card_text
from leadflow.domain.models import ContactRecord, Lead, OutboundMessage
from leadflow.observability import logger
from leadflow.steps.media import forward_attachments


class Cards:
    def __init__(self, store: Store, messenger: Messenger, business: BusinessConfig):
        self.store = store
        self.messenger = messenger
        self.business = business

    def text(self, lead: Lead, contact: ContactRecord | None = None, *, with_log: bool = True) -> str:
        """``with_log``: the log of who did what (one more read); a new card has none to show."""
        today = clock.now().astimezone(self.business.tz).date()
        contact = contact or self.store.contacts.get(lead.contact_id)
        history = self.store.conversation.history(lead.lead_id) if with_log or not lead.recent_texts else []
        return card_text(self.business, lead, contact, history, today)

    def send(
        self, lead: Lead, *, to_chat: str | None = None, contact: ContactRecord | None = None,
        owner_chat: str | None = None, with_files: bool = True,
    ) -> Lead:  # fmt: skip
        """The card for the lead's owner, once per owner (``card:<lead>:<owner>``); ``to_chat``: once
        more, to the chat the owner has just connected (the first went to the outbox). ``contact``
        and ``owner_chat``: as the caller read them already. ``with_files``: the client's files
        follow it (route forwards them itself, after the SLA timer). Returns the lead with its card."""
        if not lead.owner:
            return lead
        chat = to_chat or owner_chat or self.messenger.staff_chat(lead.owner)
        delivery = self.messenger.send(
            OutboundMessage(
                id=f"card:{lead.lead_id}:{lead.owner}" + (f":{to_chat}" if to_chat else ""),
                channel="telegram",
                to=chat,
                lead_id=lead.lead_id,
                kind="lead_card",
                text=self.text(lead, contact, with_log=False),
                buttons=card_buttons(lead),
            )
        )
        if not delivery.provider_message_id:
            if with_files and delivery.outcome == "already_sent" and lead.card:
                forward_attachments(self.messenger, lead)  # a retry after the card: its files too
            return lead
        ref = f"{chat}:{delivery.provider_message_id}"  # a reply to the card names its lead (its first line)
        shows = card_details_key(lead)  # what this card's text was made from
        changed = self.store.leads.change(
            lead.lead_id, lambda current: _with_card(current, ref, shows), known=lead
        )
        current = changed.lead if changed else lead
        if with_files:  # the write above shows every file named before it
            forward_attachments(self.messenger, current)
        return current

    def refresh(self, lead: Lead, event_id: str) -> Delivery | None:
        """Show who did what: the card is edited in Telegram (recorded as ``card_update`` in the outbox).

        A permanent failure (card deleted, bot blocked) is only recorded: the lead is already right.
        """
        ref = lead.card_ref()
        if ref is None:
            return None
        chat, message_id = ref
        current = self.store.leads.get(lead.lead_id) or lead  # the newest state, also on a late retry
        delivery = self.messenger.edit(
            OutboundMessage(
                id=f"card_update:{event_id}",
                channel="telegram",
                to=chat,
                lead_id=lead.lead_id,
                kind="card_update",
                text=self.text(current),
                buttons=card_buttons(current),
                reply_to_message_id=message_id,
            )
        )
        logger.info(
            "card updated",
            extra={"lead_id": lead.lead_id, "status": current.status, "outcome": delivery.outcome},
        )
        return delivery


def _with_card(lead: Lead, ref: str, shows: str) -> Lead | None:
    if lead.card == ref:
        return None
    lead.card = ref
    lead.card_shows = shows
    return lead
