"""The panel in a real headless Chromium (Debian's `chromium`, driven by Playwright through
``executable_path``; nothing is downloaded) against a real `leadflow up`, on a 360 px phone screen:
log in through the printed link, see the numbers of the leads this test sent, find a lead by phone,
hand it to a colleague, ask the rules who would get a lead; edit the rules (a field error in
Russian, «Что будет, если» with its change counts, «Сохранить» and the new version — in the whole
file, and in a section's form with the error next to its field) and send a
dead letter back; a specialist sees only their own leads and gets 403 on another's lead.

Screenshots of each page go to $LEADFLOW_SCREENSHOTS when it is set (else the test's tmp dir)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from leadflow_local.webhooks import Webhooks

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]
CLI = [sys.executable, "-m", "leadflow_local.cli"]
PHONE = "+79135550101"
CONFIG_NAME = "business"  # the config item's key in the ConfigTable
CLIENTS = [  # (Telegram chat, name, text): what this test sends, and so what the panel must count;
    # each names its branch (the example business has two, and asks otherwise)
    (91001, "Ирина", "Хочу на маникюр завтра в 15:00 в центре, мой номер 8 913 555-01-01"),
    (91002, "Ольга", "Сколько стоит окрашивание корней у вас в центре?"),
    (91003, "Дарья", "Запишите на женскую стрижку в пятницу вечером в центре, 89135550103"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("panel")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "META_", "FORM_", "VK_"))}
    process = subprocess.Popen([*CLI, "up", "--port", str(port)], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)  # fmt: skip
    panel_line = ""
    for _ in range(40):
        line = process.stdout.readline()
        if line.startswith("leadflow panel: "):
            panel_line = line.strip()
            break
    assert panel_line, "leadflow up printed no panel link"
    state = json.loads((cwd / ".leadflow" / f"local-{port}.json").read_text())
    hooks = Webhooks(state["url"], state["secrets"])
    for chat, name, text in CLIENTS:
        assert hooks.post(hooks.telegram_text(chat, name, text, datetime.now(UTC))).status_code == 200
    leads = _wait_for_leads(cwd, len(CLIENTS))
    yield {"cwd": cwd, "port": port, "link": panel_line.removeprefix("leadflow panel: "), "leads": leads}
    process.send_signal(signal.SIGINT)
    process.wait(timeout=20)


def _wait_for_leads(cwd: Path, count: int) -> list[dict]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = subprocess.run(
            [*CLI, "leads", "--json"], cwd=cwd, capture_output=True, text=True, check=False
        )
        leads = json.loads(result.stdout or "[]") if result.returncode == 0 else []
        if len(leads) >= count and all(lead["owner"] for lead in leads):
            return leads
        time.sleep(0.5)
    raise AssertionError("the leads were not routed in time")


@pytest.fixture
def phone(tmp_path):
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("LEADFLOW_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 360, "height": 740}, locale="ru-RU")
        page = context.new_page()
        page.shots = shots  # type: ignore[attr-defined]
        yield page
        browser.close()


def shot(page, name: str) -> None:
    """The page on the phone (and, for people looking at the screenshots, on a desktop)."""
    page.screenshot(path=str(page.shots / f"{name}-360.png"), full_page=True)
    # The page fits the phone: nothing wider than the screen but the tables' own scroll boxes.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360 + 1, name
    page.set_viewport_size({"width": 1280, "height": 800})
    page.screenshot(path=str(page.shots / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 360, "height": 740})


def _settled(phone, read, expected, timeout_s: float = 20):
    """``read()`` of the page as it reads once the panel's facts caught up: they follow the leads
    through the leads table's stream, batched for up to its window (5 s), as on AWS."""
    deadline = time.monotonic() + timeout_s
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        phone.reload()
    return value


def test_the_owner_logs_in_reads_the_numbers_finds_and_hands_on_a_lead(stack, phone):
    phone.goto(stack["link"])
    shot(phone, "login")
    phone.get_by_role("button", name="Войти").click()
    phone.wait_for_url(re.compile(r"/panel/summary"))
    # The numbers equal what this test sent (counted here, not by the panel's code).
    assert _settled(phone, lambda: phone.inner_text("#kpi-leads"), str(len(CLIENTS))) == str(len(CLIENTS))
    shot(phone, "summary")

    phone.goto(f"http://127.0.0.1:{stack['port']}/panel/leads")
    assert phone.locator("tr.lead-row").count() == len(CLIENTS)
    phone.fill("input[name=q]", "8 (913) 555-01-01")
    phone.get_by_role("button", name="Найти").click()
    assert phone.locator("tr.lead-row").count() == 1
    shot(phone, "leads")
    phone.get_by_role("link", name="Ирина").click()
    lead_id = phone.url.rsplit("/", 1)[1]
    owner = next(lead["owner"] for lead in stack["leads"] if lead["lead_id"] == lead_id)
    other = "katya" if owner != "katya" else "anna"
    phone.select_option("select[name=to]", other)
    phone.get_by_role("button", name="Передать").click()
    assert "Заявка передана" in phone.inner_text("main")
    shot(phone, "lead")
    result = subprocess.run([*CLI, "lead", lead_id, "--json"], cwd=stack["cwd"], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert json.loads(result.stdout)["owner"] == other

    phone.goto(f"http://127.0.0.1:{stack['port']}/panel/rules")
    phone.select_option("select[name=service]", "manicure")
    phone.get_by_role("button", name="Проверить").click()
    assert re.search(r"→ (Анна|Катя)", phone.inner_text("#what-if"))
    shot(phone, "rules")
    for name in ("staff", "problems"):
        phone.goto(f"http://127.0.0.1:{stack['port']}/panel/{name}")
        shot(phone, name)


def test_a_specialist_sees_only_their_own_leads(stack, phone):
    mine = [lead for lead in stack["leads"] if lead["owner"] == "olga"]
    others = [lead for lead in stack["leads"] if lead["owner"] != "olga"]
    link = subprocess.run([*CLI, "panel-link", "olga"], cwd=stack["cwd"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    phone.goto(link)
    phone.get_by_role("button", name="Войти").click()
    # The clients' hair booking is Ольга's; the nails and the question are others'.
    assert mine and others, [lead["owner"] for lead in stack["leads"]]
    phone.goto(f"http://127.0.0.1:{stack['port']}/panel/leads")
    assert _settled(phone, lambda: phone.locator("tr.lead-row").count(), len(mine)) == len(mine)
    shot(phone, "specialist-leads")
    answer = phone.goto(f"http://127.0.0.1:{stack['port']}/panel/leads/{others[0]['lead_id']}")
    assert answer.status == 403 and "Нет доступа" in phone.inner_text("main")
    shot(phone, "forbidden")
    own = phone.goto(f"http://127.0.0.1:{stack['port']}/panel/leads/{mine[0]['lead_id']}")
    assert own.status == 200
    cookies = {c["name"]: c["value"] for c in phone.context.cookies()}
    forged = requests.get(f"http://127.0.0.1:{stack['port']}/panel/summary", timeout=10,
                          cookies={"lf_session": cookies["lf_session"][::-1]})  # fmt: skip
    assert forged.status_code == 401


def test_the_owner_edits_the_rules_tries_them_saves_and_redrives_a_dead_letter(stack, phone):
    import boto3

    port = stack["port"]
    state = json.loads((stack["cwd"] / ".leadflow" / f"local-{port}.json").read_text())
    link = subprocess.run([*CLI, "panel-link", "vera"], cwd=stack["cwd"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    phone.goto(link)
    phone.get_by_role("button", name="Войти").click()
    phone.wait_for_url(re.compile(r"/panel/summary"))

    # A field error, in Russian, next to the draft (which is kept for the owner to fix).
    phone.goto(f"http://127.0.0.1:{port}/panel/rules")
    versions_before = phone.locator("tr.version").count()
    phone.locator("summary", has_text="Для опытных").click()  # the whole-file form is folded away
    stored_yaml = phone.input_value("textarea[name=yaml]")
    olga = "{id: olga, name: Ольга, role: specialist, skills: [hair], branch: center, capacity: 15}"
    igor = "{id: igor, name: Игорь, role: specialist, skills: [dental], branch: center, capacity: 10}"
    assert olga in stored_yaml and igor in stored_yaml, "the example business changed: update this test"
    phone.fill(
        "textarea[name=yaml]", stored_yaml.replace(olga, olga.replace("capacity: 15", "capacity: много"))
    )
    phone.get_by_role("button", name="Что будет, если").click()
    errors = phone.inner_text("#config-errors")
    assert "capacity" in errors and "нужно целое число" in errors, errors
    assert "много" in phone.input_value("textarea[name=yaml]")
    shot(phone, "rules-error")

    # What if hair went to Игорь and dental to Ольга: every lead Ольга has now would change hands,
    # and nobody else's (the nails and the question do not depend on either of them).
    draft = stored_yaml.replace(olga, olga.replace("[hair]", "[dental]")).replace(
        igor, igor.replace("[dental]", "[hair]")
    )
    moved = sum(1 for lead in stack["leads"] if lead["owner"] == "olga")
    assert moved >= 1, "the test's clients should include a hair booking"
    phone.fill("textarea[name=yaml]", draft)
    phone.get_by_role("button", name="Что будет, если").click()
    assert phone.inner_text("#replay-changed") == str(moved)
    shot(phone, "rules-replay")
    assert phone.input_value("textarea[name=yaml]") == draft  # «Сохранить» stores what was tried

    phone.get_by_role("button", name="Сохранить").click()
    phone.wait_for_url(re.compile(r"done=saved"))
    assert "Сохранено" in phone.inner_text("main")
    assert phone.locator("tr.version").count() == versions_before + 1
    newest = phone.locator("tr.version").first.inner_text()
    assert "Вера (панель)" in newest and "«olga» skills: [hair] → [dental]" in newest, newest
    shot(phone, "rules-saved")
    phone.locator("tr.version").first.get_by_role("link").click()
    assert "[dental]" in phone.inner_text("main")
    shot(phone, "version")
    dynamodb = boto3.client("dynamodb", endpoint_url=state["aws_endpoint"], region_name="eu-central-1",
                            aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
    table = next(env["CONFIG_TABLE"] for env in state["env"].values() if env.get("CONFIG_TABLE"))
    in_force = dynamodb.get_item(TableName=table, Key={"name": {"S": CONFIG_NAME}}, ConsistentRead=True)[
        "Item"
    ]
    assert in_force["yaml"]["S"] == draft

    # The same through the Сотрудники section's form: a field error next to the field, then a save.
    phone.goto(f"http://127.0.0.1:{port}/panel/rules")
    phone.locator("#sections").get_by_role("link", name="Сотрудники").click()
    phone.wait_for_url(re.compile(r"/panel/rules/section/staff"))
    capacity = (
        phone.locator('input[name$=".name"][value="Ольга"]')
        .get_attribute("name")
        .replace(".name", ".capacity")
    )
    row = phone.locator("details.group", has=phone.locator(f'input[name="{capacity}"]'))
    row.locator("summary").click()
    phone.fill(f'input[name="{capacity}"]', "много")
    phone.get_by_role("button", name="Сохранить").click()
    error = phone.locator(f'.field-error[data-field="{capacity}"]')
    assert error.inner_text() == "нужно целое число" and error.is_visible()
    assert phone.input_value(f'input[name="{capacity}"]') == "много"
    shot(phone, "rules-form-error")
    phone.fill(f'input[name="{capacity}"]', "12")
    phone.get_by_role("button", name="Сохранить").click()
    phone.wait_for_url(re.compile(r"done=saved"))
    assert "Сохранено" in phone.inner_text("main")
    shot(phone, "rules-form-saved")
    phone.goto(f"http://127.0.0.1:{port}/panel/rules")
    assert phone.locator("tr.version").count() == versions_before + 2
    newest = phone.locator("tr.version").first.inner_text()
    assert "Вера (панель)" in newest and "«olga» capacity: 15 → 12" in newest, newest
    in_force = dynamodb.get_item(TableName=table, Key={"name": {"S": CONFIG_NAME}}, ConsistentRead=True)[
        "Item"
    ]
    assert in_force["yaml"]["S"] == draft.replace(olga.replace("[hair]", "[dental]"),
                                                  olga.replace("[hair]", "[dental]").replace("15", "12"))  # fmt: skip

    # A poison message in the score stage's dead-letter queue: the owner sends it back.
    sqs = boto3.client("sqs", endpoint_url=state["aws_endpoint"], region_name="eu-central-1",
                       aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
    dlq_url = sqs.get_queue_url(QueueName=_queue_name(state, "ScoreDeadLetterQueue"))["QueueUrl"]
    sent = sqs.send_message(QueueUrl=dlq_url, MessageBody='{"type": "inbound", "schema_version": 99}')
    phone.goto(f"http://127.0.0.1:{port}/panel/problems")
    row = phone.locator("tr.dead-letter", has=phone.locator(f"input[value='{sent['MessageId']}']"))
    assert row.count() == 1 and "сообщение клиента" in row.inner_text()
    shot(phone, "problems-dead-letter")
    row.get_by_role("button", name="Повторить").click()
    phone.wait_for_url(re.compile(r"done=redriven"))
    assert "Сообщение отправлено на повторную обработку" in phone.inner_text("main")
    assert phone.locator(f"input[value='{sent['MessageId']}']").count() == 0
    shot(phone, "problems-redriven")

    phone.goto(f"http://127.0.0.1:{port}/panel/logout")
    shot(phone, "logout")
    phone.get_by_role("button", name="Выйти из панели").click()
    assert "Вы вышли" in phone.inner_text("main")
    assert phone.goto(f"http://127.0.0.1:{port}/panel/summary").status == 401
    shot(phone, "logged-out")


def _queue_name(state: dict, logical: str) -> str:
    """The emulator's name of one of template.yaml's queues (its URL is in a function's environment)."""
    for env in state["env"].values():
        for value in env.values():
            if isinstance(value, str) and value.startswith("http") and logical in value:
                return value.rsplit("/", 1)[1]
    return logical
