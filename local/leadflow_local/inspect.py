"""What the CLI reads and does on a stack: a running local one, or a deployed one (`--stack`).

Listing everything (`all_leads`, `outbox`) scans the local emulator's tables: fine for a local
stack with a demo's worth of data, never used by the functions, and never on a deployed stack —
there leads are read day by day through the by_day index (`leads_received`).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from leadflow import clock, wiring
from leadflow.adapters.store._dynamo import plain
from leadflow.domain.models import Lead, LeadStatus


def _scan(table: Any, **kwargs: Any) -> list[dict]:
    items: list[dict] = []
    while True:
        page = table.scan(**kwargs)
        items.extend(plain(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def all_leads() -> list[Lead]:
    leads = [Lead.model_validate(item) for item in _scan(wiring.store().leads.table)]
    return sorted(leads, key=lambda lead: lead.received_at)


def leads_received(first: date, last: date) -> list[Lead]:
    """Leads received on the UTC days first..last, through the by_day index (no scan)."""
    leads = list(wiring.store().leads.received_between(first, last))
    return sorted(leads, key=lambda lead: lead.received_at)


def next_timer(lead: Lead) -> tuple[str, datetime] | None:
    """The lead's next due timer (kind, when): the SLA clock, the wait to route, a nudge, a reminder."""
    timers = wiring.store().timers
    ids = [
        f"sla#{lead.lead_id}",
        f"route_wait#{lead.lead_id}",
        f"nudge#{lead.lead_id}",
        f"winback#{lead.lead_id}",
    ]
    ids += [f"appt#{lead.lead_id}#{hours}" for hours in wiring.business().reminders.before_appointment_h]
    due = [
        (timer.kind, timer.due) for timer in (timers.get(i) for i in ids) if timer and timer.queue != "failed"
    ]
    return min(due, key=lambda item: item[1]) if due else None


def lead_with_messages(lead_id: str) -> dict | None:
    """One lead as `leadflow leads --json` shows it, and its conversation in time order."""
    lead = wiring.store().leads.get(lead_id)
    if lead is None:
        return None
    messages = []
    for item in wiring.store().conversation.history(lead_id):
        direction = item.get("direction")
        if direction not in ("in", "out", "staff"):
            continue
        messages.append({
            "direction": direction,
            "at": item.get("at") or item.get("sent_at") or item.get("claimed_at"),
            "channel": item.get("channel"),
            "kind": item.get("kind") or item.get("action"),
            "text": item.get("text"),
            "status": item.get("status"),
        })  # fmt: skip
    messages.sort(key=lambda m: m["at"] or "")
    return {**lead.public_view(), "messages": messages}


def outbox() -> list[dict]:
    items = _scan(wiring.store().conversation.table, FilterExpression="direction = :out",
                  ExpressionAttributeValues={":out": "out"})  # fmt: skip
    keys = ("id", "channel", "to", "lead_id", "kind", "text", "sent_at", "status", "via")
    rows = [{k: item.get(k) for k in keys} for item in items]
    for row in rows:
        row["lead_id"] = None if row["lead_id"] == "-" else row["lead_id"]
    return sorted(rows, key=lambda row: row["sent_at"] or "~")


class CannotBook(ValueError):
    """A booking refused with a reason the user can act on."""


def book(lead_id: str, at: datetime) -> Lead:
    """Book a lead as staff would: refused for the past, and for closed or not-target leads."""
    from leadflow.domain import lifecycle
    from leadflow.domain.models import CLOSED_STATUSES, Intent
    from leadflow.steps.leads import LeadChanges

    business = wiring.business()
    if at.tzinfo is None:
        at = at.replace(tzinfo=business.tz)
    now = clock.now()
    store = wiring.store()
    lead = store.leads.get(lead_id)
    if lead is None:
        raise LookupError(f"no lead {lead_id}")
    if at <= now:
        raise CannotBook(
            f"{at.isoformat()} is in the past (now {now.astimezone(business.tz):%Y-%m-%d %H:%M})"
        )
    if lead.intent == Intent.not_target or lead.status == LeadStatus.not_target:
        raise CannotBook(f"lead {lead_id} is not a target lead: nothing to book")
    if lead.status in CLOSED_STATUSES:
        raise CannotBook(
            f"lead {lead_id} is closed ({lead.status}): a new message from the client opens a new lead"
        )
    from leadflow.steps.booking import Bookings

    bookings = Bookings(
        store,
        wiring.messenger(business),
        business,
        wiring.booking(business),
        wiring.settings().public_base_url,
    )
    if lead.appointment_at != at:
        refused = bookings.check_staff_booking(lead, at, lead.booked_master or lead.master or lead.owner, now)
        if refused:
            raise CannotBook(f"lead {lead_id}: {refused}")
    changes = LeadChanges(store, business)
    result = changes.apply(lead_id, lambda current: lifecycle.book(current, at, current.owner, now))
    if result is None:
        raise LookupError(f"no lead {lead_id}")
    store.timers.cancel(f"sla#{lead_id}")
    changes.schedule_booking(result.lead, now)
    wiring.crm().update_status(result.lead)
    bookings.confirm_to_client(result.lead)
    return result.lead


def _dead_letter_queues(state: dict | None = None) -> dict[str, str]:
    """DLQ logical id → the queue it serves, from template.yaml's redrive policies."""
    from leadflow_local.template import load_template

    result = {}
    for name, props in load_template().queues().items():
        redrive = props.get("RedrivePolicy")
        if redrive:
            result[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]] = name
    return result


def _sqs() -> Any:
    import boto3

    return boto3.client("sqs")


def _queue_url(name: str) -> str:
    return _sqs().get_queue_url(QueueName=name)["QueueUrl"]


QueueUrl = Callable[[str], str]  # a queue's logical id → its URL (a deployed stack's outputs)


def dlq_messages(state: dict | None = None, *, queue_url: QueueUrl = _queue_url) -> list[dict]:
    sqs = _sqs()
    found = []
    for dlq in _dead_letter_queues(state):
        url = queue_url(dlq)
        seen: set[str] = set()
        for _ in range(10):
            answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                         MessageAttributeNames=["All"])  # fmt: skip
            fresh = [m for m in answer.get("Messages", []) if m["MessageId"] not in seen]
            if not fresh:
                break
            for m in fresh:
                seen.add(m["MessageId"])
                attrs = m.get("MessageAttributes", {})
                found.append({
                    "queue": dlq,
                    "message_id": m["MessageId"],
                    "reason": attrs.get("reason", {}).get("StringValue"),
                    "body": json.loads(m["Body"]) if m["Body"].startswith("{") else m["Body"],
                })  # fmt: skip
    return found


def redrive(state: dict | None = None, *, queue_url: QueueUrl = _queue_url) -> int:
    """Move every message now in a dead-letter queue back to the queue it came from.

    All of them are taken (and hidden) first, then sent back: a message that fails again and
    is dead-lettered anew during the redrive waits for the next redrive instead of looping."""
    sqs = _sqs()
    moved = 0
    for dlq, source in _dead_letter_queues(state).items():
        url, target = queue_url(dlq), queue_url(source)
        taken: list[dict] = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=120).get(
            "Messages"
        ):
            taken.extend(batch)
        for m in taken:
            sqs.send_message(QueueUrl=target, MessageBody=m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            moved += 1
    return moved


def invite(staff_id: str, bot_username: str | None) -> tuple[str, str | None]:
    business = wiring.business()
    if business.staff_member(staff_id) is None:
        raise LookupError(f"no staff member {staff_id!r} in the business config")
    code = secrets.token_urlsafe(12).replace("-", "").replace("_", "")[:16]
    wiring.store().staff.add_invite(code, staff_id, clock.now() + timedelta(days=7))
    link = f"https://t.me/{bot_username}?start=inv-{code}" if bot_username else None
    return code, link


def invoke_function(name: str, event: dict, state: dict | None) -> Any:
    """Run one handler in this process: against the running stack, or a fresh emulator."""
    from leadflow_local import functions

    if state is not None:
        from leadflow_local.client import connect

        connect(state, name)
        return functions.invoke(name, event, state["env"][name])
    from leadflow_local.functions import ROOT
    from leadflow_local.stack import EXAMPLE_CONFIG, Emulator, function_env, quiet_local_runtime
    from leadflow_local.template import load_template

    template = load_template()
    emulator = Emulator(template)
    emulator.start()
    try:
        env = function_env(
            emulator, template, name, {"Stage": "local", "SecretsPrefix": "", "AlarmEmail": ""}
        )
        os.environ.update(env)
        # The development secrets the sample events were signed with (events/env.local.json),
        # unless the environment chose its own.
        dev = json.loads((ROOT / "events" / "env.local.json").read_text(encoding="utf-8"))["IngestFunction"]
        for key, value in dev.items():
            os.environ.setdefault(key, value)
        quiet_local_runtime()
        wiring.reset()
        wiring.store().config.put(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
        return functions.invoke(name, event, env)
    finally:
        emulator.stop()
