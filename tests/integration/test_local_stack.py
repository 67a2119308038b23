"""`leadflow up` as a user runs it: a real process, its readiness line and state file, webhooks
through its gateway, the CLI commands against it, the DLQ with its reason, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from leadflow_local.webhooks import Webhooks

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "leadflow_local.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def leadflow(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("work")
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "META_", "FORM_", "CALL_", "VK_"))
    }
    process = subprocess.Popen(
        [*CLI, "up", "--port", str(port)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    first_line = process.stdout.readline().strip()
    webhook_lines = [process.stdout.readline().strip() for _ in range(8)]
    panel_line = process.stdout.readline().strip()
    yield {"process": process, "cwd": cwd, "port": port, "first_line": first_line, "webhooks": webhook_lines,
           "panel": panel_line}  # fmt: skip
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)


def wait_for(predicate, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_up_announces_itself_and_writes_its_state(stack):
    assert stack["first_line"] == f"leadflow up: http://127.0.0.1:{stack['port']}"
    assert stack["webhooks"][0].split() == ["telegram", f"http://127.0.0.1:{stack['port']}/webhooks/telegram"]
    state = json.loads((stack["cwd"] / ".leadflow" / "local.json").read_text())
    assert state["port"] == stack["port"] and state["pid"] == stack["process"].pid


def test_the_printed_panel_link_logs_the_owner_in_through_the_gateway(stack):
    prefix = f"leadflow panel: http://127.0.0.1:{stack['port']}/panel/login?t="
    assert stack["panel"].startswith(prefix)
    browser = requests.Session()
    page = browser.get(stack["panel"].removeprefix("leadflow panel: "), timeout=10)
    assert page.status_code == 200 and "Войти" in page.text
    token = stack["panel"].removeprefix(prefix)
    login = browser.post(page.url.split("?")[0], data={"t": token}, allow_redirects=False, timeout=10)
    assert login.status_code == 303
    cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain http locally
    summary = browser.get(f"http://127.0.0.1:{stack['port']}{login.headers['Location']}", timeout=10)
    assert summary.status_code == 200 and "Сводка" in summary.text and "Вера" in summary.text
    # and the CLI prints another one-time link to the same stack
    result = leadflow(stack["cwd"], "panel-link", "marina")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(f"http://127.0.0.1:{stack['port']}/panel/login?t=")
    assert leadflow(stack["cwd"], "panel-link", "nobody").returncode == 1


def test_a_second_up_on_the_same_port_fails_clearly(stack, tmp_path):
    result = leadflow(tmp_path, "up", "--port", str(stack["port"]))
    assert result.returncode == 1
    assert f"port {stack['port']} is in use" in result.stderr


def test_unsigned_requests_are_refused_fail_closed(stack):
    url = f"http://127.0.0.1:{stack['port']}/webhooks/telegram"
    assert requests.post(url, json={"update_id": 1}, timeout=10).status_code == 403
    assert requests.post(url.replace("telegram", "nope"), data=b"{}", timeout=10).status_code == 404


def test_a_telegram_message_becomes_a_lead_with_a_reply_and_an_owner(stack):
    state = json.loads((stack["cwd"] / ".leadflow" / "local.json").read_text())
    hooks = Webhooks(state["url"], state["secrets"])
    from datetime import UTC, datetime

    delivery = hooks.telegram_text(
        88001, "Марина", "Хочу на стрижку завтра в 12:00, мой номер 89135551234", datetime.now(UTC)
    )
    assert hooks.post(delivery).status_code == 200
    assert hooks.post(delivery).status_code == 200  # redelivered by Telegram

    def owned_lead():
        leads = json.loads(leadflow(stack["cwd"], "leads", "--json").stdout)
        mine = [lead for lead in leads if lead["contact"]["channel_user_id"] == "88001"]
        return mine if mine and mine[0]["owner"] else None

    (lead,) = wait_for(owned_lead)
    assert lead["service"] == "haircut_women" and lead["contact"]["phone"] == "+79135551234"
    assert lead["owner"] == "olga"  # the only hair specialist
    outbox = json.loads(leadflow(stack["cwd"], "outbox", "--json").stdout)
    mine = [m for m in outbox if m["lead_id"] == lead["lead_id"]]
    assert sorted(m["kind"] for m in mine) == ["lead_card", "reply"]
    assert {"id", "channel", "to", "lead_id", "kind", "text", "sent_at"} <= set(mine[0])

    by_port = json.loads(leadflow(stack["cwd"], "leads", "--json", "--port", str(stack["port"])).stdout)
    assert any(item["lead_id"] == lead["lead_id"] for item in by_port)


def test_a_poison_message_lands_in_the_dlq_with_its_reason_and_can_be_redriven(stack):
    import boto3

    state = json.loads((stack["cwd"] / ".leadflow" / "local.json").read_text())
    sqs = boto3.client("sqs", endpoint_url=state["aws_endpoint"], region_name="eu-central-1",
                       aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
    sqs.send_message(
        QueueUrl=state["env"]["ingest"]["SCORE_QUEUE_URL"],
        MessageBody='{"type": "inbound", "schema_version": 99}',
    )

    def dead():
        found = json.loads(leadflow(stack["cwd"], "dlq", "--json").stdout)
        return found or None

    (entry,) = wait_for(dead)
    assert entry["queue"] == "ScoreDeadLetterQueue"
    assert "not a leadflow queue message" in entry["reason"]

    redriven = leadflow(stack["cwd"], "dlq", "redrive")
    assert redriven.stdout.strip() == "redrove 1 message(s)"
    # still poison: it comes back to the DLQ, with its reason, rather than being lost
    (again,) = wait_for(dead)
    assert again["reason"] == entry["reason"]


def test_ctrl_c_stops_everything_and_removes_the_state_file(stack):
    process = stack["process"]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    assert not (stack["cwd"] / ".leadflow" / "local.json").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{stack['port']}/webhooks/telegram", timeout=2)
