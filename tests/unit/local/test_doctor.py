"""`leadflow doctor`: one line per outside connection, in words that say what to fix, against local
stand-ins of every service (tests/fakes) speaking their documented answers; exit 1 on any problem,
and never a secret on the screen."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from leadflow import wiring
from leadflow_local.cli import main
from leadflow_local.client import NotRunning, Target, local_queue_url
from leadflow_local.doctor import Http, Setup, judge_telegram_webhook, run_checks
from tests.fakes.bitrix24_server import Bitrix24Portal
from tests.fakes.http import FakeServer
from tests.fakes.meta_server import FakeGraphApi
from tests.fakes.openai_server import FakeOpenAI, chat_completion
from tests.fakes.smsc_server import FakeSmsc
from tests.fakes.smsru_server import FakeSmsRu
from tests.fakes.telegram_server import FakeTelegram
from tests.fakes.vk_server import FakeVkApi

PUBLIC = "https://leads.salon-lotos.ru"
HOOKS = f"{PUBLIC}/webhooks"
PHONE_NUMBER_ID = "106540352242922"
VK_GROUP = 218734561
VK_SECRET = "vk-callback-secret-42"
TG_SECRET = "tg-webhook-secret-42"
STAFF = ("olga", "anna", "katya", "igor", "sergey", "marina", "elena")


@dataclass
class Outside:
    telegram: FakeTelegram
    graph: FakeGraphApi
    vk: FakeVkApi
    bitrix: Bitrix24Portal
    smsru: FakeSmsRu
    openai: FakeOpenAI
    secrets: dict[str, str]


@pytest.fixture
def outside(aws, monkeypatch) -> Iterator[Outside]:
    """Every service set up right: tokens valid, webhooks at this stack, money on the SMS account,
    every staff member connected to the bot."""
    with ExitStack() as running:
        telegram = running.enter_context(FakeTelegram())
        graph = running.enter_context(FakeGraphApi())
        vk = running.enter_context(FakeVkApi(group_id=VK_GROUP))
        bitrix = running.enter_context(Bitrix24Portal(mode=1))
        smsru = FakeSmsRu()
        smsru.balance = 512.4
        sms_server = running.enter_context(FakeServer(smsru.route))
        openai = FakeOpenAI(chat_completion("{}"), api_key="sk-test-doctor-key")
        llm_server = running.enter_context(openai.serve())

        telegram.webhook = {"url": f"{HOOKS}/telegram", "secret_token": TG_SECRET, "allowed_updates": None}
        graph.subscribe("whatsapp_business_account", f"{HOOKS}/whatsapp")
        graph.subscribe("instagram", f"{HOOKS}/instagram")
        vk.add_callback_server(f"{HOOKS}/vk", VK_SECRET)
        for i, member in enumerate(STAFF):
            aws.store.staff.connect_chat(member, str(5000 + i))

        secrets = {
            "TELEGRAM_BOT_TOKEN": telegram.token,
            "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
            "WHATSAPP_TOKEN": graph.token,
            "INSTAGRAM_TOKEN": graph.token,
            "META_APP_SECRET": graph.app_secret,
            "VK_TOKEN": vk.token,
            "VK_SECRET": VK_SECRET,
            "BITRIX24_WEBHOOK_URL": bitrix.webhook_url,
            "SMS_API_KEY": smsru.api_id,
            "OPENAI_API_KEY": openai.api_key,
        }
        settings = {
            "PUBLIC_BASE_URL": PUBLIC,
            "TELEGRAM_API_BASE": telegram.url,
            "META_GRAPH_BASE": graph.base_url,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "VK_API_BASE": vk.base_url,
            "VK_GROUP_ID": str(VK_GROUP),
            "SMS_PROVIDER": "smsru",
            "SMS_API_BASE": sms_server.url,
            "OPENAI_BASE_URL": f"{llm_server.url}/v1",
        }
        for name, value in {**secrets, **settings}.items():
            monkeypatch.setenv(name, value)
        wiring.reset()
        monkeypatch.setattr(
            "leadflow_local.cli._connected", lambda args: Target("test stack", None, local_queue_url)
        )
        yield Outside(telegram, graph, vk, bitrix, smsru, openai, secrets)


def doctor(capsys, *args: str) -> tuple[int, dict[str, tuple[str, str]], str]:
    """Exit code, {check: (status, text)} and everything printed."""
    code = main(["doctor", "--json", *args])
    out = capsys.readouterr().out
    checks = {c["check"]: (c["status"], c["text"]) for c in json.loads(out)}
    return code, checks, out


def assert_no_secret(out: str, outside: Outside) -> None:
    for name, value in outside.secrets.items():
        assert value not in out, f"{name} printed"
    assert outside.bitrix.code not in out  # the webhook's secret part


# --------------------------------------------------------------------------- all green


def test_a_stack_set_up_right_is_all_ok_and_exits_0(outside, capsys):
    code, checks, out = doctor(capsys)

    assert code == 0, out
    assert {name: status for name, (status, _) in checks.items()} == {
        "telegram bot": "ok",
        "telegram webhook": "ok",
        "whatsapp token": "ok",
        "whatsapp number": "ok",
        "instagram token": "ok",
        "whatsapp webhook": "ok",
        "instagram webhook": "ok",
        "vk callback": "ok",
        "bitrix24 webhook": "ok",
        "bitrix24 crm mode": "ok",
        "sms": "ok",
        "llm": "ok",
        "voice": "ok",
        "staff": "ok",
    }
    assert "@salon_lotos_bot" in checks["telegram bot"][1]
    assert checks["telegram webhook"][1] == f"→ {HOOKS}/telegram, 0 updates waiting"
    assert "+7 495 123-45-67 «Салон Лотос»" in checks["whatsapp number"][1]
    assert "classic CRM (leads)" in checks["bitrix24 crm mode"][1]
    assert "512.40 ₽" in checks["sms"][1]
    assert_no_secret(out, outside)


def test_the_plain_output_is_one_line_per_check_and_a_summary(outside, capsys):
    assert main(["doctor"]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert lines[0] == "leadflow doctor: test stack"
    assert lines[1].split()[:3] == ["ok", "telegram", "bot"]
    assert len(lines) == 1 + 14 + 1
    assert lines[-1] == "14 ok"


def test_nothing_configured_is_skipped_not_a_problem(aws, monkeypatch, capsys):
    monkeypatch.setattr(
        "leadflow_local.cli._connected", lambda args: Target("test stack", None, local_queue_url)
    )
    for i, member in enumerate(STAFF):
        aws.store.staff.connect_chat(member, str(5000 + i))

    code, checks, _ = doctor(capsys)

    assert code == 0
    assert {name: status for name, (status, _) in checks.items()} == {
        "telegram": "skipped", "whatsapp": "skipped", "instagram": "skipped", "vk": "skipped",
        "bitrix24": "skipped", "sms": "skipped", "llm": "skipped", "voice": "skipped", "staff": "ok",
    }  # fmt: skip
    assert "offline qualifier" in checks["llm"][1]
    assert "the client is asked to write" in checks["voice"][1]


# --------------------------------------------------------------------------- Telegram


def test_a_bad_bot_token_is_a_problem_that_names_botfather(outside, monkeypatch, capsys):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "7012345678:AAwrongwrongwrongwrongwrongwrongwro")
    outside.secrets["TELEGRAM_BOT_TOKEN"] = "7012345678:AAwrongwrongwrongwrongwrongwrongwro"

    code, checks, out = doctor(capsys)

    assert code == 1
    status, text = checks["telegram bot"]
    assert status == "problem"
    assert "401 Unauthorized" in text and "@BotFather" in text and "TELEGRAM_BOT_TOKEN" in text
    assert checks["telegram webhook"][0] == "skipped"
    assert_no_secret(out, outside)


def test_a_webhook_pointing_elsewhere_is_a_problem_with_the_right_url(outside, capsys):
    outside.telegram.webhook = {
        "url": "https://old-bot.example.com/hook?key=abc123",
        "secret_token": TG_SECRET,
    }

    code, checks, out = doctor(capsys)

    assert code == 1
    status, text = checks["telegram webhook"]
    assert status == "problem"
    assert "points at https://old-bot.example.com/hook, not this stack's" in text
    assert f"url={HOOKS}/telegram" in text and "setWebhook" in text
    assert "abc123" not in out  # a URL's query may carry a secret: never shown


def test_no_webhook_at_all_is_a_problem(outside, capsys):
    outside.telegram.webhook = None
    outside.telegram.pending_update_count = 12

    code, checks, _ = doctor(capsys)

    assert code == 1
    assert checks["telegram webhook"][0] == "problem"
    assert (
        "no webhook is set" in checks["telegram webhook"][1] and "12 updates" in checks["telegram webhook"][1]
    )


def test_pending_updates_and_a_recent_delivery_error_are_a_problem(outside, capsys):
    outside.telegram.pending_update_count = 37
    outside.telegram.last_error = (int(time.time()) - 300, "Wrong response from the webhook: 403 Forbidden")

    code, checks, _ = doctor(capsys)

    assert code == 1
    status, text = checks["telegram webhook"]
    assert status == "problem"
    assert "«Wrong response from the webhook: 403 Forbidden»" in text and "37 updates waiting" in text
    assert "TELEGRAM_WEBHOOK_SECRET must equal the secret_token" in text


def test_an_error_of_this_morning_with_nothing_waiting_is_a_warning():
    now = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
    info = {
        "url": f"{HOOKS}/telegram",
        "pending_update_count": 0,
        "last_error_date": int((now - timedelta(hours=5)).timestamp()),
        "last_error_message": "Wrong response from the webhook: 502 Bad Gateway",
    }

    check = judge_telegram_webhook(info, f"{HOOKS}/telegram", True, now)

    assert check.status == "warning"
    assert "07:00 UTC" in check.text and "ingest function's log" in check.text


def test_a_webhook_without_callback_queries_is_a_problem():
    info = {"url": f"{HOOKS}/telegram", "pending_update_count": 0, "allowed_updates": ["message"]}

    check = judge_telegram_webhook(info, f"{HOOKS}/telegram", True, datetime.now(UTC))

    assert check.status == "problem" and "callback_query" in check.text


def test_a_local_stack_cannot_judge_a_tunnel_but_says_how_to_let_it():
    info = {"url": "https://quiet-river.trycloudflare.com/webhooks/telegram", "pending_update_count": 0}

    check = judge_telegram_webhook(info, "http://127.0.0.1:3000/webhooks/telegram", False, datetime.now(UTC))

    assert check.status == "warning" and "PUBLIC_BASE_URL" in check.text


# --------------------------------------------------------------------------- Meta


@pytest.mark.parametrize("status", [400, 401])
def test_an_expired_meta_token_is_a_problem_whatever_the_http_status(outside, monkeypatch, capsys, status):
    outside.graph.auth_error_status = status
    monkeypatch.setenv("WHATSAPP_TOKEN", "EAAG-expired-token-000")
    outside.secrets["WHATSAPP_TOKEN"] = "EAAG-expired-token-000"

    code, checks, out = doctor(capsys)

    assert code == 1
    status_, text = checks["whatsapp token"]
    assert status_ == "problem" and "190" in text and "System users" in text and "WHATSAPP_TOKEN" in text
    assert checks["whatsapp number"][0] == "skipped"
    assert "whatsapp webhook" not in checks  # not asked with a dead token
    assert checks["instagram token"][0] == "ok"
    assert_no_secret(out, outside)


def test_a_wrong_phone_number_id_is_a_problem_naming_where_to_copy_it(outside, monkeypatch, capsys):
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "79161234567")
    wiring.reset()

    code, checks, _ = doctor(capsys)

    assert code == 1
    status, text = checks["whatsapp number"]
    assert status == "problem" and "79161234567" in text and "Phone number ID" in text and "API Setup" in text


def test_a_meta_webhook_elsewhere_or_without_messages_is_a_problem(outside, capsys):
    outside.graph.subscribe("whatsapp_business_account", "https://old.example.com/wa")
    outside.graph.subscribe("instagram", f"{HOOKS}/instagram", fields=("comments",))

    code, checks, _ = doctor(capsys)

    assert code == 1
    assert checks["whatsapp webhook"][0] == "problem"
    assert "points at https://old.example.com/wa" in checks["whatsapp webhook"][1]
    assert checks["instagram webhook"][0] == "problem"
    assert "not subscribed to messages" in checks["instagram webhook"][1]


def test_a_wrong_app_secret_is_a_problem(outside, monkeypatch, capsys):
    monkeypatch.setenv("META_APP_SECRET", "not-the-app-secret-at-all")
    outside.secrets["META_APP_SECRET"] = "not-the-app-secret-at-all"

    code, checks, out = doctor(capsys)

    assert code == 1
    assert checks["whatsapp webhook"][0] == "problem" and "META_APP_SECRET" in checks["whatsapp webhook"][1]
    assert_no_secret(out, outside)


# --------------------------------------------------------------------------- VK


def test_a_vk_server_vk_could_not_confirm_is_a_problem(outside, capsys):
    outside.vk.callback_servers[0]["status"] = "failed"

    code, checks, _ = doctor(capsys)

    assert code == 1
    status, text = checks["vk callback"]
    assert status == "problem" and "status failed" in text and "VK_CONFIRMATION_CODE" in text


def test_a_vk_server_waiting_for_confirmation_is_a_warning(outside, capsys):
    outside.vk.callback_servers[0]["status"] = "wait"

    code, checks, _ = doctor(capsys)

    assert code == 0 and checks["vk callback"][0] == "warning" and "Confirm" in checks["vk callback"][1]


def test_a_vk_server_with_another_secret_or_without_new_messages_is_a_problem(outside, capsys):
    outside.vk.callback_servers[0]["secret_key"] = "someone-elses"
    assert doctor(capsys)[1]["vk callback"][0] == "problem"

    outside.vk.callback_servers[0]["secret_key"] = VK_SECRET
    outside.vk.callback_events[1]["message_new"] = 0
    code, checks, _ = doctor(capsys)
    assert code == 1 and "message_new" in checks["vk callback"][1]


def test_vk_servers_that_call_someone_else_and_a_dead_token_are_problems(outside, monkeypatch, capsys):
    outside.vk.callback_servers[0]["url"] = "https://crm.example.com/vk"
    code, checks, _ = doctor(capsys)
    assert code == 1 and "they call https://crm.example.com/vk" in checks["vk callback"][1]

    monkeypatch.setenv("VK_TOKEN", "vk1.a.revoked-token")
    outside.secrets["VK_TOKEN"] = "vk1.a.revoked-token"
    code, checks, out = doctor(capsys)
    assert code == 1 and "invalid or revoked" in checks["vk callback"][1]
    assert_no_secret(out, outside)


# --------------------------------------------------------------------------- Bitrix24


def test_a_deleted_bitrix24_webhook_is_a_problem_and_its_code_stays_secret(outside, monkeypatch, capsys):
    outside.bitrix.wrong_code_error = (401, "NO_AUTH_FOUND", "Wrong authorization data")
    stale = outside.bitrix.webhook_url.replace(outside.bitrix.code, "deleted0hook0code")
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", stale)
    outside.secrets["BITRIX24_WEBHOOK_URL"] = stale

    code, checks, out = doctor(capsys)

    assert code == 1
    status, text = checks["bitrix24 webhook"]
    assert status == "problem" and "NO_AUTH_FOUND" in text and "Inbound webhook" in text
    assert checks["bitrix24 crm mode"][0] == "skipped"
    assert "deleted0hook0code" not in out
    assert_no_secret(out, outside)


def test_a_bitrix24_webhook_without_crm_permission_is_a_problem(outside, capsys):
    outside.bitrix.scopes = ["user", "task"]

    code, checks, _ = doctor(capsys)

    assert code == 1
    assert checks["bitrix24 webhook"][0] == "problem"
    assert "lacks the CRM permission (it has: user, task)" in checks["bitrix24 webhook"][1]
    status, text = checks["bitrix24 crm mode"]
    assert status == "problem" and "insufficient_scope" in text


def test_a_config_for_classic_crm_on_a_simple_portal_is_a_problem(outside, aws, capsys):
    from tests.support.aws import SALON

    aws.push_config(SALON.read_text(encoding="utf-8") + "\ncrm: {mode: classic}\n")
    outside.bitrix.portal.mode = 2

    code, checks, _ = doctor(capsys)

    assert code == 1
    status, text = checks["bitrix24 crm mode"]
    assert status == "problem" and "crm.mode: classic" in text and "simple CRM" in text


# --------------------------------------------------------------------------- SMS, LLM


def test_an_empty_sms_account_is_a_problem(outside, capsys):
    outside.smsru.balance = 0.0

    code, checks, _ = doctor(capsys)

    assert code == 1
    assert checks["sms"] == (
        "problem",
        "smsru: balance 0.00 ₽ — every SMS to clients fails; top up (sms.ru → Balance → Top up)",
    )


def test_smsc_answers_its_balance_as_a_string_and_a_wrong_password_is_a_problem(outside, monkeypatch, capsys):
    smsc = FakeSmsc(login="lotos", password="smsc-password-1")
    smsc.balance = 42.5
    with FakeServer(smsc.route) as server:
        for name, value in {"SMS_PROVIDER": "smsc", "SMS_API_BASE": server.url, "SMS_LOGIN": "lotos",
                            "SMS_API_KEY": "smsc-password-1"}.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        wiring.reset()
        assert doctor(capsys)[1]["sms"] == (
            "warning",
            "smsc: balance 42.50 ₽ is low; top up soon (smsc.ru → Top up)",
        )

        monkeypatch.setenv("SMS_API_KEY", "typo-password")
        code, checks, out = doctor(capsys)
    assert code == 1 and checks["sms"][0] == "problem" and "SMS_LOGIN" in checks["sms"][1]
    assert "typo-password" not in out


def test_a_refused_llm_key_is_a_problem(outside, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-revoked-key-123")
    outside.secrets["OPENAI_API_KEY"] = "sk-revoked-key-123"

    code, checks, out = doctor(capsys)

    assert code == 1
    status, text = checks["llm"]
    assert status == "problem" and "401 invalid_api_key" in text and "offline qualifier" in text
    assert_no_secret(out, outside)


def test_a_model_the_endpoint_does_not_have_is_a_warning(outside, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_MODEL", "yandexgpt-lite")
    wiring.reset()

    code, checks, _ = doctor(capsys)

    assert code == 0 and checks["llm"][0] == "warning" and "yandexgpt-lite" in checks["llm"][1]


def test_an_llm_endpoint_that_cannot_transcribe_is_a_warning_for_voice_messages(outside, monkeypatch, capsys):
    """YandexGPT and most chat endpoints have no whisper: the LLM line is green, the voice line says so."""
    outside.openai.models = ["yandexgpt-lite", "gpt-4o-mini"]

    code, checks, _ = doctor(capsys)

    assert code == 0 and checks["llm"][0] == "ok"
    status, text = checks["voice"]
    assert status == "warning" and "whisper-1" in text and "TRANSCRIBE_BASE_URL" in text


def test_a_refused_transcription_key_is_a_problem_and_stays_secret(outside, monkeypatch, capsys):
    monkeypatch.setenv("TRANSCRIBE_API_KEY", "sk-transcribe-revoked-9")
    outside.secrets["TRANSCRIBE_API_KEY"] = "sk-transcribe-revoked-9"

    code, checks, out = doctor(capsys)

    assert code == 1 and checks["llm"][0] == "ok"
    status, text = checks["voice"]
    assert status == "problem" and "refuses TRANSCRIBE_API_KEY (401 invalid_api_key)" in text
    assert_no_secret(out, outside)


# --------------------------------------------------------------------------- staff


def test_a_specialist_who_never_connected_is_a_problem_with_her_invite(outside, aws, capsys):
    aws.store.staff.disconnect_chat("anna", "5001")

    code, checks, _ = doctor(capsys)

    assert code == 1
    status, text = checks["staff"]
    assert status == "problem"
    assert "1 of 7 never connected to the bot: anna (Анна, specialist)" in text
    assert text.endswith("send each their invite: leadflow staff invite anna --bot salon_lotos_bot")


def test_without_a_running_stack_the_services_are_checked_and_staff_skipped(outside, monkeypatch, capsys):
    def not_running(args):
        raise NotRunning("no running stack")

    monkeypatch.setattr("leadflow_local.cli._connected", not_running)

    code, checks, _ = doctor(capsys)

    assert code == 0
    assert checks["staff"][0] == "skipped" and checks["telegram webhook"][0] == "ok"


# --------------------------------------------------------------------------- HTTP


def test_a_service_that_does_not_answer_in_time_is_a_problem_naming_only_its_host(outside):
    from leadflow.settings import secret, settings

    outside.telegram.fail_next("slow", method="getMe", delay_s=2.0)
    setup = Setup(settings(), secret, HOOKS, True)

    checks = {c.name: c for c in run_checks(setup, Http(timeout=(1.0, 0.5)))}

    assert checks["telegram bot"].status == "problem"
    assert checks["telegram bot"].text == "127.0.0.1 did not answer within 0.5 s: cannot check the bot token"
