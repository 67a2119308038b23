"""Each function's IAM policy in template.yaml grants only the tables and queues it uses.

The whole lead life cycle runs through the five handlers while botocore records, per function,
every DynamoDB table and SQS queue it touched and whether it wrote. The template's policies
(SAM policy templates and inline statements) must cover exactly that: nothing used is missing
(AccessDenied in AWS), nothing granted is unused (more than least privilege).

The CRM is a (fake) Bitrix24 portal, so the functions that call it also spend the portal-wide
request budget in the rate-limit table, and are checked for it like for any other table.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import boto3

from leadflow import clock, wiring
from leadflow_local.functions import invoke
from leadflow_local.stack import api_gateway_event, sqs_event
from leadflow_local.template import load_template
from tests.fakes.bitrix24_server import Bitrix24Portal
from tests.support.aws import deliver_streams

READS = {"GetItem", "BatchGetItem", "Query", "Scan"}
RECEIVES = {"ReceiveMessage", "DeleteMessage", "GetQueueAttributes", "ChangeMessageVisibility"}
SATURDAY_11 = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)
running: contextvars.ContextVar[str] = contextvars.ContextVar("running", default="test")


INLINE: dict[str, dict[str, set[str]]] = defaultdict(dict)  # function → table → exact actions granted
S3_GRANTS: dict[str, set[str]] = defaultdict(set)  # function → s3 actions on the media bucket
S3_USED: dict[str, set[str]] = defaultdict(set)  # function → s3 operations it called
OPERATIONS: dict[str, dict[str, set[str]]] = defaultdict(
    lambda: defaultdict(set)
)  # function → table → ops used


def granted() -> dict[str, dict[str, set[str]]]:
    """function → {"read": tables, "write": tables, "send": queues} from template.yaml."""
    grants: dict[str, dict[str, set[str]]] = {}
    for spec in load_template().functions().values():
        resource = load_template().resources[spec.logical_id]
        g = {"read": set(), "write": set(), "send": set()}
        template = load_template()
        for policy in resource["Properties"].get("Policies", []):
            if set(policy) == {"Ref"}:  # a managed policy of the template: its statements count here
                managed = template.resources[policy["Ref"]]["Properties"]["PolicyDocument"]["Statement"]
                policy = {"Statement": managed}
            for kind, args in policy.items():
                if kind == "DynamoDBCrudPolicy":
                    g["read"].add(args["TableName"]["Ref"])
                    g["write"].add(args["TableName"]["Ref"])
                elif kind == "DynamoDBReadPolicy":
                    g["read"].add(args["TableName"]["Ref"])
                elif kind == "SQSSendMessagePolicy":
                    g["send"].add(args["QueueName"]["Fn::GetAtt"][0])
                elif kind == "Statement":
                    for statement in args:
                        if all(a.startswith("ssm:") for a in statement["Action"]):
                            continue  # secrets: tests/unit/test_template.py checks which, per function
                        if all(a.startswith("s3:") for a in statement["Action"]):
                            S3_GRANTS[spec.name].update(a.split(":")[1] for a in statement["Action"])
                            continue
                        table = statement["Resource"]["Fn::GetAtt"][0]
                        INLINE[spec.name][table] = {a.split(":")[1] for a in statement["Action"]}
                        for action in statement["Action"]:
                            g["read" if action.split(":")[1] in READS else "write"].add(table)
        grants[spec.name] = g
    return grants


def record_usage(aws) -> dict[str, dict[str, set[str]]]:
    used: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"read": set(), "write": set(), "send": set()})
    queue_names = {url: name for name, url in aws.queue_urls.items()}

    def hook(model, params, **_):
        who = running.get()
        if model.service_model.service_name == "dynamodb":
            tables = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", {}))
            # a transaction names its tables per item (the calendar's holds and bookings)
            tables += [op["TableName"] for item in params.get("TransactItems", []) for op in item.values()]
            for table in tables:
                used[who]["read" if model.name in READS else "write"].add(table)
                OPERATIONS[who][table].add(model.name)
        elif model.service_model.service_name == "s3":
            S3_USED[who].add(model.name)
        elif model.service_model.service_name == "sqs" and model.name not in RECEIVES:
            used[who]["send"].add(queue_names.get(params["QueueUrl"], params["QueueUrl"]))

    boto3._get_default_session().events.register("before-parameter-build.*.*", hook)
    return used


def run(name: str, event: dict) -> dict:
    wiring.reset()  # each function is its own process in AWS: nothing cached from another one
    token = running.set(name)
    try:
        return invoke(name, event)
    finally:
        running.reset(token)


def drain(aws, queue: str, function: str) -> int:
    messages = aws.receive(queue)
    if messages:
        assert run(function, sqs_event(messages, queue)) == {"batchItemFailures": []}
    return len(messages)


def test_every_function_is_granted_exactly_what_it_uses(aws, monkeypatch):
    with Bitrix24Portal(mode=1) as portal:
        lead_life_cycle(aws, monkeypatch, portal)
    assert portal.portal.leads, "the life cycle should reach the CRM"


def lead_life_cycle(aws, monkeypatch, portal: Bitrix24Portal) -> None:
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
    monkeypatch.setenv("RATE_LIMIT_TABLE", "RateLimitTable")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("BITRIX24_APP_TOKEN", "b24")
    monkeypatch.setenv("FORM_SECRET", "f0rm")
    monkeypatch.setenv("DLQ_URL", aws.queue_urls["RouteDeadLetterQueue"])
    # The salon books for real: score offers and holds slots, «Записан» takes the calendar's time.
    from tests.support.aws import SALON

    aws.push_config(SALON.read_text(encoding="utf-8") + "\nbooking: {enabled: true}\n")
    wiring.reset()
    used = record_usage(aws)
    clock.freeze(SATURDAY_11)

    def telegram(update: dict) -> None:
        body = json.dumps(update).encode()
        headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret", "Content-Type": "application/json"}
        assert (
            run("ingest", api_gateway_event("POST", "/webhooks/telegram", "", headers, body, "127.0.0.1"))[
                "statusCode"
            ]
            == 200
        )

    # A client books; the lead is scored, routed, carded; staff onboard and act from Telegram.
    telegram({"update_id": 1, "message": {"message_id": 1, "date": int(clock.now().timestamp()), "chat": {"id": 42, "type": "private"},
              "from": {"id": 42, "is_bot": False, "first_name": "Ира"}, "text": "Хочу на маникюр завтра в 15:00, 89138402765"}})  # fmt: skip
    telegram({"update_id": 4, "message": {"message_id": 4, "date": int(clock.now().timestamp()), "chat": {"id": 43, "type": "private"},
              "from": {"id": 43, "is_bot": False, "first_name": "Оля"}, "text": "хочу на педикюр на следующей неделе"}})  # fmt: skip
    # A site form: its answer is an SMS, counted against the SMS budgets (RateLimitTable).
    form = urlencode(
        {"name": "Ия", "phone": "+7 913 840-27-66", "comment": "стрижка в пятницу", "tranid": "77:1"}
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    event = api_gateway_event("POST", "/webhooks/form", "secret=f0rm", headers, form.encode(), "127.0.0.1")
    assert run("ingest", event)["statusCode"] == 200
    drain(aws, "ScoreQueue", "score")
    drain(aws, "RouteQueue", "route")
    lead = next(
        aws.store.leads.get(i["lead_id"])
        for i in aws.store.leads.table.scan()["Items"]
        if i["chat_id"] == "42"
    )
    aws.store.staff.add_invite("code1", lead.owner, clock.now() + timedelta(days=1))
    telegram({"update_id": 2, "message": {"message_id": 2, "date": int(clock.now().timestamp()), "chat": {"id": 5001, "type": "private"},
              "from": {"id": 5001, "is_bot": False, "first_name": "Анна"}, "text": "/start inv-code1",
              "entities": [{"offset": 0, "length": 6, "type": "bot_command"}]}})  # fmt: skip
    drain(aws, "RouteQueue", "route")
    # Nobody presses «Беру»: the SLA ladder runs to the end, and a client who went quiet is nudged.
    for _ in range(4):
        clock.advance(timedelta(minutes=20))
        run("escalate", {"detail-type": "Scheduled Event"})
    drain(aws, "RouteQueue", "route")
    # The ladder handed the lead on: its owner now connects (its card follows) and books it from the card…
    owner = aws.store.leads.get(lead.lead_id).owner
    chat = 5001 if owner == lead.owner else 5002
    if chat == 5002:
        aws.store.staff.add_invite("code2", owner, clock.now() + timedelta(days=1))
        telegram({"update_id": 7, "message": {"message_id": 7, "date": int(clock.now().timestamp()), "chat": {"id": 5002, "type": "private"},
                  "from": {"id": 5002, "is_bot": False, "first_name": "Катя"}, "text": "/start inv-code2",
                  "entities": [{"offset": 0, "length": 6, "type": "bot_command"}]}})  # fmt: skip
        drain(aws, "RouteQueue", "route")
    card = int(aws.store.leads.get(lead.lead_id).card.rpartition(":")[2])
    bot_card = {"message_id": card, "date": 1, "chat": {"id": chat, "type": "private"},
                "from": {"id": 1, "is_bot": True, "first_name": "bot"}, "text": f"Лид {lead.lead_id} · 🔥"}  # fmt: skip
    telegram({"update_id": 3, "callback_query": {"id": "cb1", "from": {"id": chat, "is_bot": False, "first_name": "Мастер"},
              "chat_instance": "1", "data": f"book:{lead.lead_id}", "message": bot_card}})  # fmt: skip
    drain(aws, "RouteQueue", "route")
    assert aws.store.leads.get(lead.lead_id).status == "booked"
    # …and answers the client from the card: the assistant steps aside, the client's next words go to the owner.
    telegram({"update_id": 8, "message": {"message_id": 8, "date": int(clock.now().timestamp()), "chat": {"id": chat, "type": "private"},
              "from": {"id": chat, "is_bot": False, "first_name": "Мастер"}, "text": "Ира, ждём вас завтра в 15:00",
              "reply_to_message": bot_card}})  # fmt: skip
    drain(aws, "RouteQueue", "route")
    assert aws.store.leads.get(lead.lead_id).handed_over

    # An enqueue that fails: the dedupe mark is never marked queued, so the platform's redelivery is taken.
    def refuse_once(**_):
        boto3._get_default_session().events.unregister("before-parameter-build.sqs.SendMessage", refuse_once)
        raise ConnectionError("sqs unavailable")

    hello = {"update_id": 6, "message": {"message_id": 6, "date": int(clock.now().timestamp()),
             "chat": {"id": 44, "type": "private"}, "from": {"id": 44, "is_bot": False, "first_name": "Ян"},
             "text": "привет"}}  # fmt: skip
    boto3._get_default_session().events.register("before-parameter-build.sqs.SendMessage", refuse_once)
    with contextlib.suppress(Exception):
        telegram(hello)
    assert aws.store.inbox.get("telegram:6")["status"] == "received"
    telegram(hello)  # Telegram retries the update: this time it is queued
    assert aws.store.inbox.get("telegram:6")["status"] == "queued"
    drain(aws, "ScoreQueue", "score")
    # The client quotes the bot's reply: ingest tells it from staff traffic by the chat, it goes to score.
    telegram({"update_id": 5, "message": {"message_id": 5, "date": int(clock.now().timestamp()), "chat": {"id": 42, "type": "private"},
              "from": {"id": 42, "is_bot": False, "first_name": "Ира"}, "text": "да, всё верно",
              "reply_to_message": {"message_id": 3, "date": 1, "chat": {"id": 42, "type": "private"},
                                   "from": {"id": 1, "is_bot": True, "first_name": "bot"}, "text": "Записываю вас"}}})  # fmt: skip
    drain(aws, "RouteQueue", "route")
    drain(aws, "ScoreQueue", "score")
    # (a «да» to the booking: confirmed, and the owner sees it under the card)
    assert aws.store.leads.get(lead.lead_id).status == "confirmed"
    # A CRM event; then a week of reminders, nudges to the quiet client and evening digests.
    form = "event=ONCRMLEADUPDATE&data%5BFIELDS%5D%5BID%5D=7&ts=1773460800&auth%5Bapplication_token%5D=b24"
    run("ingest", api_gateway_event("POST", "/webhooks/bitrix24", "", {"content-type": "application/x-www-form-urlencoded"},
                                    form.encode(), "127.0.0.1"))  # fmt: skip
    drain(aws, "RouteQueue", "route")
    for _ in range(16):  # a week: reminders, nudges, the nurture hand-off, digests
        clock.advance(timedelta(hours=12))
        run("remind", {"detail-type": "Scheduled Event"})
    panel_actions(aws, monkeypatch, crm_id=aws.store.leads.get(lead.lead_id).crm_id)

    grants = granted()
    for function, operations in S3_USED.items():  # the media bucket: tests/unit/steps/media checks each use
        assert operations <= S3_GRANTS[function], f"{function} calls {operations - S3_GRANTS[function]} on S3"
    for function, tables in INLINE.items():
        for table, actions in tables.items():
            assert OPERATIONS[function][table] <= actions, (
                f"{function} calls {OPERATIONS[function][table] - actions} on {table}"
            )
            # An inline statement names exact actions: each one is used (the rate limit: UpdateItem only).
            assert actions <= OPERATIONS[function][table], (
                f"{function} is granted {actions - OPERATIONS[function][table]} on {table} but never calls it"
            )
    for function in ("ingest", "score", "route", "escalate", "remind", "panel"):
        for access in ("read", "write", "send"):
            missing = (
                used[function][access]
                - grants[function][access]
                - (grants[function]["write"] if access == "read" else set())
            )
            assert not missing, f"{function} {access}s {sorted(missing)} without a grant"
        granted_tables = grants[function]["read"] | grants[function]["write"]
        used_tables = used[function]["read"] | used[function]["write"]
        assert granted_tables <= used_tables, (
            f"{function} is granted unused tables {sorted(granted_tables - used_tables)}"
        )
        needlessly_writable = grants[function]["write"] - used[function]["write"]
        assert not needlessly_writable, f"{function} may write {sorted(needlessly_writable)} but only reads"
        # A dead-letter queue is written only when a record fails for good (tests/integration covers it).
        unused_queues = {
            q for q in grants[function]["send"] - used[function]["send"] if not q.endswith("DeadLetterQueue")
        }
        assert not unused_queues, f"{function} may send to {sorted(unused_queues)} but never does"


def panel_actions(aws, monkeypatch, crm_id: str | None) -> None:
    """The owner in the panel: numbers, a lead, hand it on, close one, switch a member off, redrive."""
    import re

    from tests.support.aws import SALON

    monkeypatch.setenv("SCORE_DEAD_LETTER_QUEUE_URL", aws.queue_urls["ScoreDeadLetterQueue"])
    monkeypatch.setenv("ROUTE_DEAD_LETTER_QUEUE_URL", aws.queue_urls["RouteDeadLetterQueue"])
    aws.push_config(SALON.read_text(encoding="utf-8").replace(
        "staff:\n", "staff:\n  - {id: vera, name: Вера, role: owner, capacity: 0}\n", 1))  # fmt: skip
    sqs = boto3.client("sqs", region_name="eu-central-1")
    for dlq in ("ScoreDeadLetterQueue", "RouteDeadLetterQueue"):
        sqs.send_message(QueueUrl=aws.queue_urls[dlq], MessageBody='{"type": "inbound"}',
                         MessageAttributes={"reason": {"DataType": "String", "StringValue": "boom"}})  # fmt: skip
    headers = {"host": "panel.example.com", "content-type": "application/x-www-form-urlencoded"}

    def panel(method: str, path: str, form: dict | None = None, cookie: str = "") -> dict:
        sent = {**headers, "cookie": cookie} if cookie else headers
        body = urlencode(form or {}).encode()
        return run("panel", api_gateway_event(method, path, "", sent, body, "127.0.0.1"))

    token = aws.store.panel.issue_login("vera", clock.wall_now() + timedelta(minutes=10))
    cookie = panel("POST", "/panel/login", {"t": token})["cookies"][0].split(";")[0]
    # The leads table's stream reaches the panel function (its tally keeps the day-by-day facts).
    wiring.reset()
    as_panel = running.set("panel")
    try:
        assert deliver_streams() > 0
    finally:
        running.reset(as_panel)
    assert panel("GET", "/panel/summary", cookie=cookie)["statusCode"] == 200
    from tests.support.builders import lead as a_lead

    first, second = (
        a_lead(lead_id, owner="olga", status="assigned", service="haircut_women", branch="center", crm_id=crm, crm_entity="lead" if crm else None,
               received_at=clock.now(), last_message_at=clock.now(), assigned_at=clock.now())
        for lead_id, crm in (("PANEL1", None), ("PANEL2", crm_id))  # closing PANEL2 tells the CRM
    )  # fmt: skip
    for made in (first, second):
        aws.store.leads.create(made)
        aws.store.staff.take_lead("olga", made.lead_id)
    page = panel("GET", f"/panel/leads/{first.lead_id}", cookie=cookie)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page["body"]).group(1)
    assert (
        panel("POST", f"/panel/leads/{first.lead_id}/reassign", {"csrf": csrf, "to": "auto"}, cookie)[
            "statusCode"
        ]
        == 303
    )
    assert panel("POST", f"/panel/leads/{second.lead_id}/lose", {"csrf": csrf}, cookie)["statusCode"] == 303
    assert panel("POST", "/panel/staff/olga/deactivate", {"csrf": csrf}, cookie)["statusCode"] == 303
    page = panel("GET", "/panel/problems", cookie=cookie)
    for queue, message_id in re.findall(
        r'name="queue" value="(\w+)"><input type="hidden" name="message_id" value="([^"]+)"', page["body"]
    ):
        panel(
            "POST",
            "/panel/problems/redrive",
            {"csrf": csrf, "queue": queue, "message_id": message_id},
            cookie,
        )
