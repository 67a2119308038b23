"""Reaching a client from a scheduled job when the channel says no.

WhatsApp delivers free text only within 24 hours of the client's last message; outside that
window the sender raises ``OutsideWindow``. A reminder must not be lost there: it goes as the
business's approved template (``messages.whatsapp_template``), else by SMS when the client left a
phone and SMS is configured, else the caller tells the owner. Every attempt is an exactly-once
outbound message of its own (``<id>``, ``<id>:template``, ``<id>:sms``).
"""

from __future__ import annotations

from typing import Literal

from leadflow.adapters.channels.base import Sender, SendError, SendResult
from leadflow.adapters.channels.meta import OutsideWindow
from leadflow.adapters.channels.sms import MARKETING_KINDS
from leadflow.adapters.outbound import Outbound
from leadflow.business import BusinessConfig
from leadflow.domain.models import Lead, OutboundMessage
from leadflow.observability import logger, metrics
from leadflow.settings import settings

# Russian businesses approve their templates in Russian.
TEMPLATE_LANGUAGE = "ru"

Path = Literal["sent", "already_sent", "template", "sms", "failed", "window_closed"]


class _WindowWatch(Sender):
    """Passes a send through and remembers whether the channel's window was closed."""

    def __init__(self, inner: Sender):
        self.inner = inner
        self.channel = inner.channel
        self.window_closed = False

    def send(self, message: OutboundMessage) -> SendResult:
        try:
            return self.inner.send(message)
        except OutsideWindow:
            self.window_closed = True
            raise


class _TemplateSender(Sender):
    """Sends the message's text as the single body parameter of an approved template.

    One utility template with one variable (``{{1}}``) serves every scheduled message kind, so
    a business approves one template, not one per kind.
    """

    channel = "whatsapp"

    def __init__(self, inner: Sender, name: str):
        self.inner = inner
        self.name = name

    def send(self, message: OutboundMessage) -> SendResult:
        send_template = getattr(self.inner, "send_template", None)
        if send_template is None:
            return self.inner.send(message)  # the local outbox records it
        # Template parameters may not hold line breaks.
        return send_template(message.to, self.name, TEMPLATE_LANGUAGE, [" ".join(message.text.split())])


def deliver_to_client(
    outbound: Outbound, business: BusinessConfig, lead: Lead, message: OutboundMessage, *, consent: bool
) -> Path:
    """Send ``message``; through a closed WhatsApp window try the template, then SMS.

    ``consent``: the client agreed to marketing messages (a marketing kind goes by SMS only then).
    Returns how it went; "failed" and "window_closed" mean the client was not reached.
    """
    watch: dict[str, _WindowWatch] = {}

    def watched(channel: str) -> Sender:
        watch[channel] = _WindowWatch(outbound.sender_for(channel))
        return watch[channel]

    first = Outbound(outbound.store, watched).send(message)
    if first.outcome != "failed":
        return first.outcome
    if not (message.channel == "whatsapp" and watch.get("whatsapp") and watch["whatsapp"].window_closed):
        return "failed"
    metrics.add_metric(name="WhatsAppWindowClosed", unit="Count", value=1)
    template = business.messages.whatsapp_template
    if template and _try(
        Outbound(outbound.store, lambda channel: _TemplateSender(outbound.sender_for(channel), template)),
        message.model_copy(update={"id": f"{message.id}:template"}),
    ):
        return "template"
    phone = lead.contact.phone
    sms_allowed = consent or message.kind not in MARKETING_KINDS
    if phone and settings().sms_provider and sms_allowed:
        sms = message.model_copy(
            update={"id": f"{message.id}:sms", "channel": "sms", "to": phone, "business_connection_id": None}
        )
        if _try(outbound, sms):
            return "sms"
    return "window_closed"


def _try(outbound: Outbound, message: OutboundMessage) -> bool:
    """One fallback attempt; a failure of any sort moves on to the next fallback."""
    try:
        return outbound.send(message).outcome != "failed"
    except SendError as exc:
        logger.warning("fallback send failed", extra={"kind": message.kind, "reason": exc.reason})
        return False
