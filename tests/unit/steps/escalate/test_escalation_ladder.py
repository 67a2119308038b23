"""The SLA ladder driven through the real escalate step on moto: remind the owner at due, tell the
senior and raise priority at +15, reassign at +30 — each step once, stopping on acceptance."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from datetime import timedelta

import boto3

from leadflow import clock, wiring
from leadflow.adapters.messenger import Messenger
from leadflow.adapters.store import Store
from leadflow.domain.models import CrmEvent, StaffEvent
from leadflow.settings import settings
from leadflow.steps.crm_sync import CrmSync
from leadflow.steps.escalate import EscalateStep
from leadflow.steps.route import RouteStep
from leadflow.steps.sms_reports import SmsReports
from leadflow.steps.workspace import Workspace
from leadflow_local.functions import invoke
from tests.support.builders import (
    RecordingCrm,
    client_writes,
    escalator,
    local,
    outbox,
    route,
    sent,
    tick,
    use_business,
    use_crm,
)

TUESDAY_10 = local(2026, 3, 17, 10)
HOT_MANICURE = "Хочу на маникюр сегодня в 15:00, тел 89138402765"


def _hot_lead(aws, monkeypatch, crm):
    """A hot manicure lead written on Tuesday 10:00 and routed; every step wiring builds gets ``crm``."""
    use_crm(monkeypatch, crm)
    clock.freeze(TUESDAY_10)
    lead = client_writes(aws.store, HOT_MANICURE)
    aws.receive("RouteQueue")  # the LeadReady score sent: routed here directly
    return route(aws.store, lead.lead_id)


def _press(chat: str, action: str, event_id: str) -> None:
    """A staff member's button press, as route's workspace takes it from the route queue."""
    event = StaffEvent(event_id=event_id, chat_id=chat, user_id=chat, action=action, received_at=clock.now())
    wiring.workspace(wiring.business()).handle(event)


def _kinds(store, lead_id):
    return Counter(m["kind"] for m in outbox(store, lead_id) if m["status"] == "sent")


def test_ladder_reminds_escalates_and_reassigns_each_step_once(aws, monkeypatch):
    crm = RecordingCrm()
    lead = _hot_lead(aws, monkeypatch, crm)
    first_owner = lead.owner
    assert first_owner in {"anna", "katya"} and lead.temperature == "hot"
    assert aws.store.timers.get(f"sla#{lead.lead_id}").due == local(2026, 3, 17, 10, 15)
    job = escalator()

    # 14 minutes of ticks, three runs a minute: the SLA has not run out
    tick(job, local(2026, 3, 17, 10, 14), times=3)
    assert _kinds(aws.store, lead.lead_id) == {"lead_card": 1, "reply": 1}

    # At due the owner is reminded, once, whatever the number of runs
    tick(job, local(2026, 3, 17, 10, 29), times=3)
    (reminder,) = sent(aws.store, lead.lead_id, "sla_reminder")
    assert reminder["to"] == f"staff:{first_owner}" and "Беру" in json.dumps(
        reminder["buttons"], ensure_ascii=False
    )
    assert "sla_breached" in aws.store.leads.get(lead.lead_id).tags
    assert sent(aws.store, lead.lead_id, "escalation") == [] and crm.calls == []

    # +15: the senior hears about it and the priority goes up (in the CRM too)
    tick(job, local(2026, 3, 17, 10, 44), times=3)
    (escalation,) = sent(aws.store, lead.lead_id, "escalation")
    assert escalation["to"] == "staff:elena"
    owner_name = {"anna": "Анна", "katya": "Катя"}[first_owner]
    assert f"({owner_name})" in escalation["text"]  # the senior is told whose lead waits, by name
    assert aws.store.leads.get(lead.lead_id).priority == "high"
    assert crm.calls == [("raise_priority", lead.lead_id)]

    # +30: the next free nails specialist gets the lead and a card; the first owner's slot is freed
    tick(job, local(2026, 3, 17, 10, 45), times=3)
    second_owner = ({"anna", "katya"} - {first_owner}).pop()
    after = aws.store.leads.get(lead.lead_id)
    assert after.owner == second_owner and "reassigned" in after.tags
    cards = sent(aws.store, lead.lead_id, "lead_card")
    assert [c["to"] for c in cards] == [f"staff:{first_owner}", f"staff:{second_owner}"]
    state = aws.store.staff.state([first_owner, second_owner])
    assert (state[first_owner].open_leads, state[second_owner].open_leads) == (0, 1)
    assert crm.calls == [("raise_priority", lead.lead_id), (f"reassign:{second_owner}", lead.lead_id)]
    # The new owner has a fresh hot SLA (15 business minutes from the reassignment at 10:45)
    assert aws.store.timers.get(f"sla#{lead.lead_id}").due == local(2026, 3, 17, 11, 0)
    tick(job, local(2026, 3, 17, 11, 30), times=3)
    # ...and was reminded at 11:00 and the senior told about them at 11:15 (not deduplicated away
    # as the same escalation as the first owner's); no second reassignment: no ping-pong.
    reminders = sent(aws.store, lead.lead_id, "sla_reminder")
    assert [r["to"] for r in reminders] == [f"staff:{first_owner}", f"staff:{second_owner}"]
    assert len(sent(aws.store, lead.lead_id, "escalation")) == 2
    assert aws.store.leads.get(lead.lead_id).owner == second_owner
    assert _kinds(aws.store, lead.lead_id) == {"lead_card": 2, "reply": 1, "sla_reminder": 2, "escalation": 2}


def test_overlapping_runs_send_every_step_exactly_once(aws, monkeypatch):
    crm = RecordingCrm()
    lead = _hot_lead(aws, monkeypatch, crm)
    first, second = escalator(), escalator()
    for minute in (15, 30, 45):
        clock.freeze(local(2026, 3, 17, 10, minute))
        # Interleaved: both runs read the due timers before either works them
        stale = aws.store.timers.due("escalate", clock.now())
        assert [t.lead_id for t in stale] == [lead.lead_id]
        worked = first.run(clock.now())
        second.store.timers.due = lambda queue, now, limit=100, stale=stale: stale  # type: ignore[method-assign]
        try:
            assert (worked, second.run(clock.now())) == (1, 0)  # the second run's claim loses
        finally:
            del second.store.timers.due
    assert _kinds(aws.store, lead.lead_id) == {"lead_card": 2, "reply": 1, "sla_reminder": 1, "escalation": 1}
    assert [call for call, _ in crm.calls].count("raise_priority") == 1


def test_concurrent_threads_send_every_step_exactly_once(aws, monkeypatch):
    # DynamoDB applies each request atomically; moto checks a condition and writes without a
    # lock, so requests are made atomic here. Threads still interleave between requests.
    from moto.core.botocore_stubber import BotocoreStubber

    one_request_at_a_time = threading.RLock()
    original = BotocoreStubber.__call__

    def atomic(self, *args, **kwargs):
        with one_request_at_a_time:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", atomic)
    crm = RecordingCrm()
    lead = _hot_lead(aws, monkeypatch, crm)
    business = wiring.business()

    def own_escalator() -> EscalateStep:
        store = Store(boto3.resource("dynamodb"), settings())  # one client per thread, as two Lambdas
        messenger = Messenger(store, business, wiring.sender, sms_configured=False)
        router = RouteStep(store, messenger, crm, business, wiring.frame(), Workspace(store, messenger, crm, business),
                           CrmSync(store, crm, business), SmsReports(store, messenger))  # fmt: skip
        return EscalateStep(store, messenger, crm, business, wiring.route_queue(), router.reassign)

    workers = [own_escalator() for _ in range(4)]
    for minute in range(14, 47):
        clock.freeze(local(2026, 3, 17, 10, minute))
        start = threading.Barrier(len(workers))

        def work(job: EscalateStep, start: threading.Barrier = start) -> None:
            start.wait()
            job.run(clock.now())

        threads = [threading.Thread(target=work, args=(job,)) for job in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert _kinds(aws.store, lead.lead_id) == {"lead_card": 2, "reply": 1, "sla_reminder": 1, "escalation": 1}
    assert sorted(call.split(":")[0] for call, _ in crm.calls) == ["raise_priority", "reassign"], crm.calls


def test_accepting_from_the_card_stops_the_ladder(aws, monkeypatch):
    crm = RecordingCrm()
    lead = _hot_lead(aws, monkeypatch, crm)
    aws.store.staff.connect_chat(lead.owner, "9001")
    job = escalator()
    tick(job, local(2026, 3, 17, 10, 20), times=2)
    assert len(sent(aws.store, lead.lead_id, "sla_reminder")) == 1
    (reminder,) = sent(aws.store, lead.lead_id, "sla_reminder")
    assert f"accept:{lead.lead_id}" in json.dumps(reminder["buttons"])

    # The owner presses «Беру» on the reminder at 10:20
    _press("9001", f"accept:{lead.lead_id}", "cb1")
    assert aws.store.leads.get(lead.lead_id).status == "accepted"

    tick(job, local(2026, 3, 17, 12, 0), times=2)
    assert sent(aws.store, lead.lead_id, "escalation") == []
    assert aws.store.leads.get(lead.lead_id).owner == lead.owner
    assert aws.store.timers.get(f"sla#{lead.lead_id}") is None
    assert "raise_priority" not in [c for c, _ in crm.calls]


def test_a_crm_status_change_stops_the_ladder(aws, monkeypatch):
    crm = RecordingCrm()
    lead = _hot_lead(aws, monkeypatch, crm)
    aws.store.leads.mutate(lead.lead_id, lambda current: current.model_copy(update={"crm_id": "501"}))
    job = escalator()
    tick(job, local(2026, 3, 17, 10, 31), times=2)
    assert len(sent(aws.store, lead.lead_id, "escalation")) == 1

    # The manager moves the lead to "in progress" in Bitrix24 at 10:31
    crm.statuses[lead.lead_id] = "accepted"
    wiring.route_step().crm_sync.apply(
        CrmEvent(event_id="b1", event="ONCRMLEADUPDATE", crm_id="501", received_at=clock.now())
    )

    tick(job, local(2026, 3, 17, 12, 0), times=2)
    after = aws.store.leads.get(lead.lead_id)
    assert after.owner == lead.owner and "reassigned" not in after.tags
    assert len(sent(aws.store, lead.lead_id, "lead_card")) == 1


def test_a_closed_lead_gets_no_reminder(aws, monkeypatch):
    crm = RecordingCrm()
    lead = _hot_lead(aws, monkeypatch, crm)
    aws.store.staff.connect_chat(lead.owner, "9001")
    clock.freeze(local(2026, 3, 17, 10, 5))
    _press("9001", f"not_target:{lead.lead_id}", "cb2")
    assert aws.store.leads.get(lead.lead_id).status == "not_target"
    tick(escalator(), local(2026, 3, 17, 12, 0))
    assert _kinds(aws.store, lead.lead_id)["sla_reminder"] == 0
    assert aws.store.timers.get(f"sla#{lead.lead_id}") is None


def test_a_breach_at_closing_time_escalates_after_opening(aws, monkeypatch):
    use_crm(monkeypatch, RecordingCrm())
    clock.freeze(local(2026, 3, 17, 20, 50))
    lead = client_writes(aws.store, HOT_MANICURE.replace("сегодня", "завтра"))
    aws.receive("RouteQueue")
    lead = route(aws.store, lead.lead_id)
    job = escalator()
    tick(job, local(2026, 3, 18, 9, 10), step=timedelta(minutes=5))
    # Reminded at 09:05 (10 minutes before closing + 5 after opening); the senior not at night
    assert len(sent(aws.store, lead.lead_id, "sla_reminder")) == 1
    assert sent(aws.store, lead.lead_id, "escalation") == []
    tick(job, local(2026, 3, 18, 9, 25), step=timedelta(minutes=5))
    assert len(sent(aws.store, lead.lead_id, "escalation")) == 1


def test_waiting_lead_is_handed_to_route_after_route_after_min(aws):
    # Given a lead that said what but not when (route waits for the rest of the facts)
    clock.freeze(TUESDAY_10)
    lead = client_writes(aws.store, "Здравствуйте, хочу на маникюр")
    assert aws.receive("RouteQueue") == []
    assert aws.store.timers.get(f"route_wait#{lead.lead_id}").due == local(2026, 3, 17, 10, 10)

    # When the escalate handler ticks through the next 15 minutes
    for minute in range(1, 16):
        clock.freeze(local(2026, 3, 17, 10, minute))
        invoke("escalate", {"source": "aws.events"})
        if minute == 9:
            assert aws.receive("RouteQueue") == []

    # Then route got the lead exactly once, at 10:10, as "waited"
    (message,) = aws.receive("RouteQueue")
    assert json.loads(message["Body"]) | {} == {"type": "lead_ready", "schema_version": 1,
                                                 "lead_id": lead.lead_id, "reason": "waited", "contact": None}  # fmt: skip
    assert aws.store.timers.get(f"route_wait#{lead.lead_id}") is None


def test_route_after_min_is_configurable_and_routed_leads_are_not_resent(aws, monkeypatch):
    clock.freeze(TUESDAY_10)
    business = wiring.business().model_copy(deep=True)
    business.qualify.route_after_min = 3
    use_business(monkeypatch, business)
    use_crm(monkeypatch, RecordingCrm())
    waiting = client_writes(aws.store, "Хочу на маникюр", chat="6001")
    routed = client_writes(aws.store, "Хочу на педикюр", chat="6002")
    route(aws.store, routed.lead_id)  # the manager routed it by hand meanwhile
    tick(escalator(), local(2026, 3, 17, 10, 5))
    assert [json.loads(m["Body"])["lead_id"] for m in aws.receive("RouteQueue")] == [waiting.lead_id]


def test_a_crash_right_after_reassigning_still_leaves_the_new_owner_a_clock(aws, monkeypatch):
    crm = RecordingCrm()
    lead = _hot_lead(aws, monkeypatch, crm)
    job = escalator()
    tick(job, local(2026, 3, 17, 10, 44), times=2)  # reminder, then escalation
    # Given the function dies between the reassignment and the timer's restart
    real_reschedule = aws.store.timers.reschedule

    def crash(*args, **kwargs):
        monkeypatch.setattr(aws.store.timers, "reschedule", real_reschedule)
        raise RuntimeError("killed mid-step")

    monkeypatch.setattr(aws.store.timers, "reschedule", crash)
    clock.freeze(local(2026, 3, 17, 10, 45))
    with contextlib.suppress(RuntimeError):
        job.run(clock.now())
    new_owner = aws.store.leads.get(lead.lead_id).owner
    assert new_owner != lead.owner
    # When the claim's lease runs out, the next run finds the step again
    tick(job, local(2026, 3, 17, 10, 51), times=2)
    timer = aws.store.timers.get(f"sla#{lead.lead_id}")
    # Then the new owner has a running SLA clock, and the lead was not passed on a second time
    assert timer is not None and timer.step == 0 and timer.data.get("round") == 2
    assert aws.store.leads.get(lead.lead_id).owner == new_owner


def test_a_timer_that_keeps_failing_is_given_up_and_the_senior_told(aws, monkeypatch):
    lead = _hot_lead(aws, monkeypatch, RecordingCrm())

    # Given the ladder's step fails every time it runs (the lead cannot be written)
    def unwritable(*args, **kwargs):
        raise RuntimeError("ProvisionedThroughputExceededException")

    monkeypatch.setattr(aws.store.leads, "change", unwritable)
    # When the schedule keeps running it for hours
    tick(escalator(), local(2026, 3, 17, 13, 0))
    # Then after five attempts the timer leaves the due index for good, and the senior is told once
    item = aws.store.timers.table.get_item(Key={"timer_id": f"sla#{lead.lead_id}"})["Item"]
    assert (item["queue"], item["failed_from"], int(item["attempts"])) == ("failed", "escalate", 5)
    (note,) = sent(aws.store, lead.lead_id, "timer_failed")
    assert note["to"] == "staff:elena" and "Проверьте" in note["text"]
