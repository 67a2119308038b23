"""Everything that goes wrong on a Saturday morning, at once, on the local stack — and afterwards
every lead exists once, is in the CRM once, every client got one first reply, every owner one card.

Faults: each webhook delivered 1–3 times and out of order; Bitrix24 answering 503
QUERY_LIMIT_EXCEEDED, 500 and a timeout; Telegram answering 429 with retry_after; the LLM
endpoint timing out, then failing; score raising mid-batch for two records; one poison message
(a LeadReady for a lead that only appears later) that lands in the DLQ with its reason and is
redriven once its cause is fixed.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.fakes.bitrix24_server import Bitrix24Portal
from tests.fakes.http import FakeServer
from tests.fakes.openai_server import FakeOpenAI, server_error, slow
from tests.fakes.smsc_server import FakeSmsc
from tests.fakes.telegram_server import DEFAULT_TOKEN, FakeTelegram
from tests.integration import worker_hooks

pytestmark = pytest.mark.integration
GHOST = "L-ghost-0001"  # the lead the poison message names, created only after it was dead-lettered


def _saturday_morning() -> datetime:
    tz = ZoneInfo("Asia/Krasnoyarsk")
    today = datetime.now(tz).date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    return datetime(saturday.year, saturday.month, saturday.day, 10, 5, tzinfo=tz)


def _wait_for(predicate, timeout: float = 60, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def faulty_world(monkeypatch, tmp_path):
    portal = Bitrix24Portal()
    telegram = FakeTelegram()
    llm = FakeOpenAI(slow(server_error(), 15), server_error())
    smsc = FakeSmsc()
    with portal, telegram, FakeServer(llm.route) as llm_server, FakeServer(smsc.route) as smsc_server:
        # SMS through a fake SMSC: the SMS webhook takes the callbacks of SMS_PROVIDER alone
        for name, value in {"SMS_PROVIDER": "smsc", "SMS_LOGIN": smsc.login, "SMS_API_KEY": smsc.password,
                            "SMS_API_BASE": smsc_server.url}.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", DEFAULT_TOKEN)
        monkeypatch.setenv("TELEGRAM_API_BASE", telegram.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{llm_server.url}/v1")
        yield portal, telegram, llm, tmp_path


def _deliveries(hooks, at: datetime) -> dict[str, list]:
    """One delivery per lead, keyed by the contact it comes from."""
    texts = [
        "Здравствуйте! Хочу на маникюр завтра в 15:00, Ирина, 89135550101",
        "Сколько стоит окрашивание корней?",
        "Можно на стрижку в субботу после 18? Катя, 8 913 222 33 44",
        "Запишите на чистку лица в понедельник вечером",
        "Нужна замена масла завтра утром, тел +7 913 555 01 02",
        "Добрый день, есть окошко на педикюр сегодня?",
    ]
    found: dict[str, list] = {}
    for i, text in enumerate(texts):
        found[f"telegram:{71000 + i}"] = [
            hooks.telegram_text(71000 + i, "Клиент", text, at, update_id=880_000 + i)
        ]
    found["whatsapp:79235550001"] = [hooks.whatsapp_text("+79235550001", "Ольга", texts[1], at)]
    found["instagram:17841455510001"] = [
        hooks.instagram_text(
            "17841455510001", "Можно на стрижку в субботу после 18? Катя, 8 913 222 33 99", at
        )
    ]
    found["vk:190000777"] = [hooks.vk_message(190000777, texts[3], at)]
    found["form:79235551234"] = [hooks.tilda_form({"Name": "Светлана", "Phone": "+7 (923) 555-12-34",
                                                   "Комментарий": "Хочу на брови в пятницу в 12:00", "Филиал": "Центр"})]  # fmt: skip
    found["call:79135550077"] = [hooks.missed_call("+79135550077", "+73912000000", at)]
    # (every contact its own phone: a phone shared across channels rightly joins one lead)
    found["sms:79025550011"] = [hooks.smsc_inbound("+79025550011", "Можно на массаж спины завтра в 11?", at)]
    return found


@pytest.mark.timeout(300)
@pytest.mark.parametrize("flavor", ["aws", "yandex"])
def test_after_every_fault_each_lead_is_whole_once(faulty_world, monkeypatch, flavor):
    import boto3

    from leadflow import clock, wiring
    from leadflow.domain.models import Contact, Lead
    from leadflow_local import inspect
    from leadflow_local.stack import LocalStack, _free_port
    from leadflow_local.webhooks import Webhooks

    portal, telegram, _llm, state_dir = faulty_world
    # Given a score step that crashes on two records of a batch (planted in score's workers)…
    calls = state_dir / "score-calls"
    monkeypatch.setenv(worker_hooks.SCORE_CALLS, str(calls))
    # (On Yandex Cloud no batch fails: the frame sends each failed record back itself, counted here.)
    requeues = state_dir / "requeues"
    monkeypatch.setenv(worker_hooks.REQUEUES, str(requeues))
    # …a CRM that refuses and stalls for a stretch, and a Telegram that rate-limits.
    portal.fail_next(503, "QUERY_LIMIT_EXCEEDED", "Too many requests", times=2)
    portal.fail_next(500, times=1)
    portal.delay_next(12, times=1)
    telegram.fail_next("rate_limit", times=2, retry_after=1, method="sendMessage")

    stack = LocalStack(
        port=_free_port(), state_dir=state_dir, schedule=False, clock_start=_saturday_morning(),
        worker_setup="tests.integration.worker_hooks:flaky_score_counting_requeues", flavor=flavor,
    )  # fmt: skip
    stack.start()
    try:
        hooks = Webhooks(stack.url, stack.state()["secrets"])
        by_contact = _deliveries(hooks, clock.now())
        # When every webhook comes 1–3 times, shuffled, from several senders at once
        rng = random.Random(11)
        posts = [d for ds in by_contact.values() for d in ds for _ in range(rng.randint(1, 3))]
        rng.shuffle(posts)
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda d: hooks.post(d).status_code, posts))
        assert set(statuses) == {200}
        # and a poison message names a lead that does not exist (yet)
        sqs = boto3.client("sqs")
        sqs.send_message(QueueUrl=stack.envs["ingest"]["ROUTE_QUEUE_URL"],
                         MessageBody=f'{{"type": "lead_ready", "schema_version": 1, "lead_id": "{GHOST}"}}')  # fmt: skip

        last: list = []

        def settled():
            leads = [lead for lead in inspect.all_leads() if lead.lead_id != GHOST]
            targets = [lead for lead in leads if lead.intent != "not_target"]
            last[:] = [(lead.channel, lead.intent, lead.status, lead.owner, lead.crm_id) for lead in leads]
            return len(leads) == len(by_contact) and all(lead.crm_id for lead in targets) and stack.drain(5)

        try:
            _wait_for(settled, timeout=150)
        except AssertionError:
            raise AssertionError(f"not settled: {len(last)} leads of {len(by_contact)}: {last}") from None

        # Then every contact has exactly one lead…
        leads = [lead for lead in inspect.all_leads() if lead.lead_id != GHOST]
        per_contact = Counter(f"{lead.channel}:{''.join(c for c in lead.contact.channel_user_id or lead.contact.phone or '' if c.isdigit())}" for lead in leads)  # fmt: skip
        assert sorted(per_contact) == sorted(by_contact) and set(per_contact.values()) == {1}
        outbox = inspect.outbox()
        for lead in leads:
            mine = Counter(m["kind"] for m in outbox if m["lead_id"] == lead.lead_id)
            # …one first reply to the client, in the CRM once, and its owner got one card.
            assert mine["reply"] == 1, (lead.channel, mine)
            if lead.intent != "not_target":
                assert len(portal.records_with_origin(lead.lead_id)) == 1, lead.channel
                assert lead.owner and mine["lead_card"] == 1, (lead.channel, mine)
        for key in (k for k in by_contact if k.startswith("telegram:")):
            assert len(telegram.texts(key.split(":")[1])) == 1  # the 429s were retried, never doubled

        # And the poison waits in the DLQ with its reason…
        (dead,) = _wait_for(lambda: inspect.dlq_messages(stack.state()), timeout=30)
        assert dead["queue"] == "RouteDeadLetterQueue" and f"lead {GHOST} does not exist" in dead["reason"]
        # …until its lead appears, and a redrive routes it once.
        ghost = Lead(lead_id=GHOST, channel="form", chat_id="+79135550999", contact_id="c-ghost",
                     contact=Contact(name="Вера", phone="+79135550999"), intent="booking", temperature="warm",
                     service="manicure", received_at=clock.now(), last_message_at=clock.now())  # fmt: skip
        wiring.store().leads.create(ghost)
        assert inspect.redrive(stack.state()) == 1
        routed = _wait_for(
            lambda: (lead := wiring.store().leads.get(GHOST)) and lead.owner and lead.crm_id and lead
        )
        assert routed.owner and len(portal.records_with_origin(GHOST)) == 1
        assert stack.drain(10) and inspect.dlq_messages(stack.state()) == []
        assert worker_hooks.count(calls) >= len(by_contact) + 2  # the crashed records were retried
        if flavor == "yandex":  # …by being sent back to their queue, attempt counter and all
            assert worker_hooks.count(requeues) >= 2
        else:
            assert worker_hooks.count(requeues) == 0
    finally:
        stack.stop()
        wiring.reset()
