"""The staff workspace driven as in production: Telegram updates through the ingest handler,
score and route handlers on real (moto) queues, the Bot API answered by a loopback FakeTelegram."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from leadflow import clock, wiring
from leadflow.adapters.crm import BuiltinCrm
from leadflow.domain.models import Lead
from leadflow_local.functions import invoke
from leadflow_local.inspect import invite
from leadflow_local.stack import api_gateway_event, sqs_event
from leadflow_local.webhooks import Delivery, Webhooks
from tests.fakes.telegram_server import FakeTelegram
from tests.support.builders import use_crm

SATURDAY_11_KRSK = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)  # the salon is open
ANNA, KATYA, MARINA = 5001, 5002, 5006
CLIENT = 70001
SECRETS = {
    "TELEGRAM_WEBHOOK_SECRET": "tg-secret",
    "META_APP_SECRET": "meta-secret",
    "VK_SECRET": "vk",
    "FORM_SECRET": "form",
    "CALL_SECRET": "call",
}


class RecordingCrm(BuiltinCrm):
    """The built-in CRM that also remembers every status it was told (what Bitrix24 would receive)."""

    def __init__(self) -> None:
        self.statuses: list[tuple[str, str]] = []
        self.details: list[tuple[str, str | None]] = []

    def update_status(self, lead: Lead) -> None:
        self.statuses.append((lead.lead_id, str(lead.status)))

    def update_details(self, lead: Lead, business: object) -> None:
        self.details.append((lead.lead_id, lead.contact.phone))


@dataclass
class Workspace:
    aws: object
    tg: FakeTelegram | None
    crm: RecordingCrm
    hooks: Webhooks = field(default_factory=lambda: Webhooks("http://unused", SECRETS))
    route_failures: list[str] = field(default_factory=list)

    def post(self, delivery: Delivery) -> int:
        event = api_gateway_event(
            "POST",
            f"/webhooks/{delivery.channel}",
            delivery.query,
            delivery.headers,
            delivery.body,
            "127.0.0.1",
        )
        return invoke("ingest", event)["statusCode"]

    def run(self) -> None:
        """Work both queues until they are empty; route's failed records are kept for the test."""
        for _ in range(10):
            score = self.aws.receive("ScoreQueue")  # type: ignore[attr-defined]
            if score:
                assert invoke("score", sqs_event(score, "ScoreQueue")) == {"batchItemFailures": []}
            route = self.aws.receive("RouteQueue")  # type: ignore[attr-defined]
            if route:
                self.route(route)
            if not score and not route:
                return

    def run_score_only(self) -> None:
        batch = self.aws.receive("ScoreQueue")  # type: ignore[attr-defined]
        assert invoke("score", sqs_event(batch, "ScoreQueue")) == {"batchItemFailures": []}

    def route(self, batch: list[dict]) -> list[str]:
        failed = [
            f["itemIdentifier"] for f in invoke("route", sqs_event(batch, "RouteQueue"))["batchItemFailures"]
        ]
        self.route_failures.extend(failed)
        return failed

    def say(self, text: str, user: int = CLIENT, name: str = "Ирина") -> None:
        clock.advance(timedelta(seconds=30))
        assert self.post(self.hooks.telegram_text(user, name, text, clock.now())) == 200
        self.run()

    def command(self, chat: int, text: str, reply_to: int | None = None) -> None:
        clock.advance(timedelta(seconds=5))
        delivery = self.hooks.telegram_command(chat, text, clock.now())
        if reply_to is not None:
            update = json.loads(delivery.body)
            update["message"]["reply_to_message"] = {
                "message_id": reply_to, "date": update["message"]["date"],
                "from": {"id": 1, "is_bot": True, "first_name": "leadflow"}, "chat": {"id": chat, "type": "private"},
                "text": self.quoted(chat, reply_to),
            }  # fmt: skip
            delivery = self.hooks._telegram(update)
        assert self.post(delivery) == 200
        self.run()

    def press(self, chat: int, data: str, card_id: int) -> None:
        clock.advance(timedelta(seconds=5))
        assert self.post(self.hooks.telegram_callback(chat, data, card_id, clock.now())) == 200
        self.run()

    def reply_to_card(self, chat: int, card_id: int, text: str) -> None:
        clock.advance(timedelta(seconds=5))
        card = self.quoted(chat, card_id)
        assert self.post(self.hooks.telegram_reply_to_card(chat, card_id, text, clock.now(), card)) == 200
        self.run()

    def quoted(self, chat: int, message_id: int) -> str:
        """The text of the bot's message ``message_id`` in ``chat``, as Telegram quotes it in a reply."""
        items = self.aws.store.conversation.table.scan()["Items"]  # type: ignore[attr-defined]
        sent = [
            i
            for i in items
            if i.get("to") == str(chat) and str(i.get("provider_message_id")) == str(message_id)
        ]
        return str(sent[-1]["text"]) if sent else ""

    def connect(self, staff_id: str, chat: int) -> None:
        code, _ = invite(staff_id, None)
        self.command(chat, f"/start inv-{code}")

    def only_lead(self) -> Lead:
        items = self.aws.store.leads.table.scan()["Items"]  # type: ignore[attr-defined]
        assert len(items) == 1
        lead = self.aws.store.leads.get(items[0]["lead_id"])  # type: ignore[attr-defined]
        assert lead is not None
        return lead

    def lead(self, lead_id: str) -> Lead:
        lead = self.aws.store.leads.get(lead_id)  # type: ignore[attr-defined]
        assert lead is not None
        return lead

    def outbox(self, lead_id: str, kind: str) -> list[dict]:
        return [m for m in self.aws.store.conversation.outbound(lead_id) if m["kind"] == kind]  # type: ignore[attr-defined]

    def card_id(self, lead: Lead) -> int:
        assert lead.card, "the lead has no card"
        return int(lead.card.rpartition(":")[2])


def start_workspace(aws, monkeypatch, tg: FakeTelegram | None) -> Workspace:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    if tg is not None:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", tg.token)
        monkeypatch.setenv("TELEGRAM_API_BASE", tg.url)
    """The salon open (Saturday 11:00), every channel's webhook secret set, a recording CRM."""
    wiring.reset()
    crm = RecordingCrm()
    use_crm(monkeypatch, crm)
    clock.freeze(SATURDAY_11_KRSK)
    return Workspace(aws, tg, crm)
