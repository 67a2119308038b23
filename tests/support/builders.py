"""Builders every test may use: business configs from YAML text, wall-clock moments, leads,
the real steps wired to the moto stack (tests/support/aws.py), and a CRM that records its calls."""

from __future__ import annotations

import functools
import itertools
import json
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from boto3.dynamodb.conditions import Key

from leadflow import clock, wiring
from leadflow.adapters.crm import BuiltinCrm
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig, parse_business_config
from leadflow.domain.models import Contact, InboundMessage, Lead, LeadReady
from leadflow.steps.escalate import EscalateStep
from leadflow.steps.leads import LeadChanges
from leadflow.steps.remind import RemindStep
from leadflow_local.functions import invoke
from leadflow_local.stack import sqs_event

KRASNOYARSK = KRS = ZoneInfo("Asia/Krasnoyarsk")
MSK = ZoneInfo("Europe/Moscow")
SATURDAY_11 = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)  # 11:00 in Krasnoyarsk, the salon is open
_ids = itertools.count(1)


# --------------------------------------------------------------------------- configs, times, leads


def business(yaml_text: str) -> BusinessConfig:
    return parse_business_config(textwrap.dedent(yaml_text), source="test.yaml")


def moment(tz: ZoneInfo, text: str) -> datetime:
    """An aware datetime from '2026-03-16 10:00' on the wall clock of ``tz``."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A moment on the example business's wall clock (Asia/Krasnoyarsk, UTC+7)."""
    return datetime(year, month, day, hour, minute, tzinfo=KRASNOYARSK)


def lead(lead_id: str = "L1", **fields) -> Lead:
    base = {
        "lead_id": lead_id,
        "channel": "telegram",
        "chat_id": "42",
        "contact_id": f"C-{lead_id}",
        "intent": "booking",
        "temperature": "warm",
        "received_at": datetime(2026, 3, 16, 3, 0, tzinfo=UTC),
        "last_message_at": datetime(2026, 3, 16, 3, 0, tzinfo=UTC),
    }
    return Lead.model_validate(base | fields)


# --------------------------------------------------------------------------- a CRM that records


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


def use_crm(monkeypatch, crm) -> None:
    """Every step wiring builds gets ``crm`` (cached like the real one, so wiring.reset() still works)."""
    monkeypatch.setattr(wiring, "crm", functools.cache(lambda: crm))


def use_business(monkeypatch, config: BusinessConfig) -> BusinessConfig:
    """Every step wiring builds from now on sees ``config`` (a changed copy of the stored one, say)
    instead of the config in the ConfigTable."""
    monkeypatch.setattr(wiring, "business", lambda: config)
    return config


# --------------------------------------------------------------------------- the steps on moto


def client_writes(
    store: Store,
    text: str,
    *,
    chat: str = "5001",
    channel: str = "telegram",
    phone: str | None = None,
    phone_verified: bool = False,
    lead_id: str | None = None,
) -> Lead:
    """One client message through the real score step; the lead it joined (``lead_id``: the lead
    to return when the message closed it — the contact has no open lead then)."""
    message = InboundMessage(
        message_id=f"{channel}:{chat}:{next(_ids)}",
        channel=channel,  # type: ignore[arg-type]
        chat_id=chat,
        contact=Contact(name="Ирина", phone=phone, channel_user_id=chat, phone_verified=phone_verified),
        text=text,
        received_at=clock.now(),
    )
    wiring.score_step().handle(message)
    contact = store.contacts.resolve([f"{channel}#{chat}"]).contact
    lead = store.leads.get(contact.open_lead_id or lead_id or "-")
    assert lead is not None
    return lead


def route(store: Store, lead_id: str) -> Lead:
    failures = wiring.route_step().route([LeadReady(lead_id=lead_id)])
    assert failures == {}
    lead = store.leads.get(lead_id)
    assert lead is not None and lead.owner
    return lead


def schedule_booking(lead: Lead) -> None:
    """What a booking (or a no-show) made by staff schedules: the reminders, or the win-back."""
    LeadChanges(wiring.store(), wiring.business()).schedule_booking(lead, clock.now())


def escalator() -> EscalateStep:
    return wiring.escalate_step()


def reminders() -> RemindStep:
    return wiring.remind_step()


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
    queue = "escalate" if isinstance(runner, EscalateStep) else "remind"
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


# --------------------------------------------------------------------------- score through its handler


def message(
    n: int, text: str, *, at: datetime = SATURDAY_11, channel: str = "telegram", **extra
) -> InboundMessage:
    return InboundMessage(
        message_id=f"{channel}:{n}",
        channel=channel,
        chat_id="4242",
        contact=Contact(name="Ира", channel_user_id="4242"),
        text=text,
        received_at=at,
        **extra,
    )


def score(aws, *messages: InboundMessage, receive_count: int = 1) -> dict:
    records = [
        {
            "MessageId": m.message_id,
            "ReceiptHandle": "rh",
            "Body": m.model_dump_json(),
            "Attributes": {"ApproximateReceiveCount": str(receive_count)},
        }
        for m in messages
    ]
    return invoke("score", sqs_event(records, "ScoreQueue"))


def replies(aws) -> list[dict]:
    items = aws.store.conversation.table.scan()["Items"]
    return sorted((i for i in items if i.get("kind") == "reply"), key=lambda i: i["claimed_at"])


def only_lead(aws):
    (item,) = aws.store.leads.table.scan()["Items"]
    return aws.store.leads.get(item["lead_id"])


def ready_messages(aws) -> list[dict]:
    return [json.loads(m["Body"]) for m in aws.receive("RouteQueue")]
