"""The sample events a user replays (`sam local invoke -e`, `leadflow invoke -e`) do what their names
say, through the real handlers: a staff button press accepts the lead, a reply to a card reaches
the client, an invite connects a staff member, a ready lead gets its owner and card."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from leadflow import clock, wiring
from leadflow.domain.models import Contact, Lead, LeadStatus
from leadflow_local.functions import invoke
from leadflow_local.stack import sqs_event
from tests.support.builders import RecordingCrm, use_crm
from tests.support.webhooks import EVENTS, SECRETS, delivery, ingest

OLGA_CHAT = "6234567890"  # the staff chat of the Telegram samples


@pytest.fixture
def stack(aws, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    use_crm(monkeypatch, RecordingCrm())
    clock.freeze(datetime(2025, 3, 8, 9, 0, tzinfo=UTC))
    return aws


def seed_lead(
    aws, lead_id: str, owner: str, *, status: LeadStatus = LeadStatus.assigned, chat: str = "70001"
) -> Lead:
    now = clock.now()
    lead = Lead(
        lead_id=lead_id, channel="telegram", chat_id=chat, contact_id=f"C-{lead_id}",
        contact=Contact(name="Мария", channel_user_id=chat), intent="booking", temperature="hot",
        service="haircut_women", branch="center", status=status, owner=owner, assigned_at=now,
        received_at=now - timedelta(minutes=5), last_message_at=now - timedelta(minutes=5), routed=True,
    )  # fmt: skip
    assert aws.store.leads.create(lead)
    aws.store.staff.take_lead(owner, lead_id)
    return lead


def run_route(aws) -> None:
    messages = aws.receive("RouteQueue")
    assert messages, "ingest should have queued the event for route"
    assert invoke("route", sqs_event(messages, "RouteQueue")) == {"batchItemFailures": []}


def sample(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_telegram_callback_query_is_olga_taking_the_lead(stack):
    seed_lead(stack, "L-0412", "olga")
    stack.store.staff.connect_chat("olga", OLGA_CHAT)
    assert ingest(delivery(EVENTS / "telegram" / "callback_query.json"))["status"] == 200
    run_route(stack)
    lead = stack.store.leads.get("L-0412")
    assert lead.status == LeadStatus.accepted and lead.owner == "olga" and lead.accepted_at


def test_telegram_reply_to_card_reaches_the_client_and_the_assistant_steps_aside(stack):
    seed_lead(stack, "L-0412", "olga")
    stack.store.staff.connect_chat("olga", OLGA_CHAT)
    stack.store.staff.remember_card(OLGA_CHAT, "8841", "L-0412")
    assert ingest(delivery(EVENTS / "telegram" / "reply_to_card.json"))["status"] == 200
    run_route(stack)
    lead = stack.store.leads.get("L-0412")
    assert lead.handed_over
    (reply,) = [m for m in stack.store.conversation.outbound("L-0412") if m["kind"] == "staff_reply"]
    expected = sample("telegram/reply_to_card.json")["message"]["text"]
    assert reply["to"] == "70001" and reply["text"] == expected and reply["status"] == "sent"


def test_telegram_start_invite_connects_the_staff_member(stack):
    code = sample("telegram/start_invite.json")["message"]["text"].split("inv-", 1)[1].strip()
    stack.store.staff.add_invite(code, "olga", clock.now() + timedelta(days=1))
    assert ingest(delivery(EVENTS / "telegram" / "start_invite.json"))["status"] == 200
    run_route(stack)
    chat = str(sample("telegram/start_invite.json")["message"]["chat"]["id"])
    assert stack.store.staff.staff_for_chat(chat) == "olga"


def test_telegram_off_command_from_a_staff_chat_takes_the_day_off(stack):
    chat = str(sample("telegram/off_command.json")["message"]["chat"]["id"])
    stack.store.staff.connect_chat("anna", chat)
    assert ingest(delivery(EVENTS / "telegram" / "off_command.json"))["status"] == 200
    run_route(stack)
    assert stack.store.staff.state(["anna"])["anna"].off_until is not None


def test_route_lead_ready_gives_the_lead_its_owner_and_card(stack):
    event = sample("route/lead_ready.json")
    lead_id = json.loads(event["Records"][0]["body"])["lead_id"]
    lead = seed_lead(stack, lead_id, "olga")
    stack.store.leads.mutate(
        lead_id,
        lambda current: current.model_copy(
            update={"owner": None, "routed": False, "status": LeadStatus.qualifying}
        ),
    )
    assert invoke("route", event) == {"batchItemFailures": []}
    routed = stack.store.leads.get(lead.lead_id)
    assert routed.owner and routed.card and stack.store.timers.get(f"sla#{lead_id}") is not None


def test_route_staff_accept_is_a_press_of_beru(stack):
    event = sample("route/staff_accept.json")
    body = json.loads(event["Records"][0]["body"])
    lead_id = body["action"].split(":", 1)[1]
    seed_lead(stack, lead_id, "anna")
    stack.store.staff.connect_chat("anna", body["chat_id"])
    assert invoke("route", event) == {"batchItemFailures": []}
    assert stack.store.leads.get(lead_id).status == LeadStatus.accepted


def test_score_inbound_message_makes_a_lead_and_answers(stack):
    event = sample("score/inbound_message.json")
    assert invoke("score", event) == {"batchItemFailures": []}
    (item,) = stack.store.leads.table.scan()["Items"]
    replies = [m for m in stack.store.conversation.outbound(item["lead_id"]) if m["kind"] == "reply"]
    assert replies and replies[0]["status"] == "sent"


@pytest.mark.parametrize("function", ["escalate", "remind"])
def test_scheduled_events_run_their_job(stack, function):
    assert "timers" in invoke(function, sample(f"{function}/scheduled.json"))


def test_the_panel_sample_is_a_login_page_for_a_link_that_does_not_work(stack):
    page = invoke("panel", sample("panel/login_page.json"))
    assert page["statusCode"] == 410 and "Ссылка не действует" in page["body"]
    token = stack.store.panel.issue_login("elena", clock.wall_now() + timedelta(minutes=10))
    event = sample("panel/login_page.json") | {"queryStringParameters": {"t": token}}
    page = invoke("panel", event)
    assert page["statusCode"] == 200 and "Войти" in page["body"]


def test_the_panel_sample_stream_batch_keeps_the_lead_s_newest_fact(stack):
    """events/panel/lead_changes.json: a lead made, then given to Olga — the panel's tally keeps its fact."""
    answer = invoke("panel", sample("panel/lead_changes.json"))
    assert answer == {"batchItemFailures": []}
    day = datetime(2025, 3, 8).date()
    (fact,) = stack.store.stats.between(day, day)
    assert (fact.lead_id, fact.owner, fact.version, fact.campaign) == ("L-sample-1", "olga", 1, "spring")
    assert invoke("panel", sample("panel/lead_changes.json")) == answer  # delivered twice: the same
    assert stack.store.stats.between(day, day) == [fact]
