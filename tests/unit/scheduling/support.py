"""What the scheduling tests share: the example business's clock, leads made the way score makes
them, the real Escalator/Reminders wired to the moto store, and a CRM that records its calls."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from boto3.dynamodb.conditions import Key

from leadflow import clock, wiring
from leadflow.adapters.crm import BuiltinCrm
from leadflow.adapters.outbound import Outbound
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain.models import Contact, InboundMessage, Lead, LeadReady
from leadflow.steps.escalate import Escalator
from leadflow.steps.remind import Reminders
from leadflow.steps.route import Router
from leadflow.steps.score import Conversation

KRASNOYARSK = ZoneInfo("Asia/Krasnoyarsk")
_ids = itertools.count(1)


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A moment on the example business's wall clock (Asia/Krasnoyarsk, UTC+7)."""
    return datetime(year, month, day, hour, minute, tzinfo=KRASNOYARSK)


class RecordingCrm(BuiltinCrm):
    """The built-in CRM that also remembers what it was asked to do (and can report a status)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.statuses: dict[str, str] = {}
        self._lock = threading.Lock()

    def _note(self, what: str, lead: Lead) -> None:
        with self._lock:
            self.calls.append((what, lead.lead_id))

    def update_status(self, lead: Lead) -> None:
        self._note(f"status:{lead.status}", lead)

    def raise_priority(self, lead: Lead) -> None:
        self._note("raise_priority", lead)

    def reassign(self, lead: Lead, crm_user_id: str | None) -> None:
        self._note(f"reassign:{lead.owner}", lead)

    def status_of(self, lead: Lead) -> str | None:
        return self.statuses.get(lead.lead_id)


def client_writes(
    store: Store,
    business: BusinessConfig,
    text: str,
    *,
    chat: str = "5001",
    channel: str = "telegram",
    phone: str | None = None,
    lead_id: str | None = None,
) -> Lead:
    """One client message through the real score step (Conversation.handle); the lead it joined."""
    message = InboundMessage(
        message_id=f"{channel}:{chat}:{next(_ids)}",
        channel=channel,  # type: ignore[arg-type]
        chat_id=chat,
        contact=Contact(name="Ирина", phone=phone, channel_user_id=chat),
        text=text,
        received_at=clock.now(),
    )
    Conversation(store, Outbound(store), wiring.route_queue(), business).handle(message)
    contact_id = store.contacts.resolve([f"{channel}#{chat}"])[0]
    lead = store.leads.get(store.contacts.get(contact_id).get("open_lead_id") or lead_id or "-")
    assert lead is not None
    return lead


def route(store: Store, business: BusinessConfig, crm: RecordingCrm, lead_id: str) -> Lead:
    failures = Router(store, Outbound(store), crm, business).route([LeadReady(lead_id=lead_id)])
    assert failures == {}
    lead = store.leads.get(lead_id)
    assert lead is not None and lead.owner
    return lead


def escalator(store: Store, business: BusinessConfig, crm: RecordingCrm) -> Escalator:
    outbound = Outbound(store)
    router = Router(store, outbound, crm, business)
    return Escalator(store, outbound, crm, business, wiring.route_queue(), router.reassign)


def reminders(store: Store, business: BusinessConfig, crm: RecordingCrm) -> Reminders:
    return Reminders(store, Outbound(store), crm, business)


def outbox(store: Store, lead_id: str) -> list[dict]:
    """Every outbound message of a lead (the conversation table's out# items), oldest first."""
    return sorted(store.conversation.outbound(lead_id), key=lambda m: m.get("claimed_at", ""))


def sent(store: Store, lead_id: str, kind: str) -> list[dict]:
    return [m for m in outbox(store, lead_id) if m["kind"] == kind and m["status"] == "sent"]


def tick(runner, until: datetime, step: timedelta = timedelta(minutes=1), times: int = 1) -> None:
    """Play a schedule firing every ``step`` until ``until``, running the job ``times`` per firing.

    Firings with nothing due are skipped (they would find nothing: the job only reads the due
    index), so days of schedule cost a few runs, not thousands: the clock jumps to the first
    firing at or after the next due timer, as the real schedule would reach it.
    """
    queue = "escalate" if isinstance(runner, Escalator) else "remind"
    while clock.now() < until:
        now = clock.now()
        upcoming = runner.store.timers.table.query(
            IndexName="due", KeyConditionExpression=Key("queue").eq(queue), Limit=1
        )["Items"]
        firings = 1
        if upcoming:
            wait = datetime.fromisoformat(upcoming[0]["due_at"].replace("Z", "+00:00")) - now
            firings = max(1, -(-wait // step))  # ceil: the first firing at or after the due time
        clock.freeze(min(now + firings * step, until))
        for _ in range(times):
            runner.run(clock.now())
