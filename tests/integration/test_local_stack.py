"""`leadflow up` as a user runs it: a real process, its readiness line and state file, webhooks
through its gateway, the CLI commands against it, the DLQ with its reason, its emulator and
workers as processes of their own, Ctrl-C stopping every one of them."""

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
from tests.support.waiting import wait_for

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
    panel_line = ""
    for _ in range(30):  # after the webhook URLs (more channels may follow the first eight)
        line = process.stdout.readline().strip()
        if line.startswith("leadflow panel:"):
            panel_line = line
            break
    yield {"process": process, "cwd": cwd, "port": port, "first_line": first_line, "webhooks": webhook_lines,
           "panel": panel_line}  # fmt: skip
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)


def test_up_announces_itself_and_writes_its_state(stack):
    assert stack["first_line"] == f"leadflow up: http://127.0.0.1:{stack['port']}"
    assert stack["webhooks"][0].split() == ["telegram", f"http://127.0.0.1:{stack['port']}/webhooks/telegram"]
    state = json.loads((stack["cwd"] / ".leadflow" / f"local-{stack['port']}.json").read_text())
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
    state = json.loads((stack["cwd"] / ".leadflow" / f"local-{stack['port']}.json").read_text())
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


def test_the_leads_stream_keeps_the_panel_s_facts_and_they_count_as_leadflow_kpi_does(stack):
    """`leadflow up` hands the leads table's stream to the panel function as Lambda's event source
    would: the stats table's facts follow every lead, and counted they give `leadflow kpi`."""
    import boto3

    from leadflow.business import parse_business_config
    from leadflow.domain.facts import LeadFact
    from leadflow.domain.kpi import compute_kpis

    state = json.loads((stack["cwd"] / ".leadflow" / f"local-{stack['port']}.json").read_text())
    hooks = Webhooks(state["url"], state["secrets"])
    from datetime import UTC, datetime

    delivery = hooks.telegram_text(88002, "Вера", "Хочу на маникюр в пятницу в 15:00", datetime.now(UTC))
    assert hooks.post(delivery).status_code == 200
    stats = boto3.resource("dynamodb", endpoint_url=state["aws_endpoint"], region_name="eu-central-1",
                           aws_access_key_id="local", aws_secret_access_key="local").Table("StatsTable")  # fmt: skip

    def facts_of_every_lead():
        leads = {
            lead["lead_id"]: lead for lead in json.loads(leadflow(stack["cwd"], "leads", "--json").stdout)
        }
        items = stats.scan()["Items"]  # a test's look at a small table
        facts = {f.lead_id: f for item in items for k, v in item.items() if k.startswith("L")
                 for f in [LeadFact.from_json(v)]}  # fmt: skip
        settled = (
            leads
            and set(facts) == set(leads)
            and all(
                facts[i].owner == lead["owner"] and facts[i].status == lead["status"]
                for i, lead in leads.items()
            )
        )
        return list(facts.values()) if settled else None

    facts = wait_for(facts_of_every_lead)
    tz = parse_business_config(Path(state["config"]).read_text(encoding="utf-8")).tz
    kpi = json.loads(leadflow(stack["cwd"], "kpi", "--json").stdout)
    assert json.loads(json.dumps(compute_kpis(facts, tz=tz))) == kpi


def test_a_poison_message_lands_in_the_dlq_with_its_reason_and_can_be_redriven(stack):
    import boto3

    state = json.loads((stack["cwd"] / ".leadflow" / f"local-{stack['port']}.json").read_text())
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


def test_a_client_s_photo_is_kept_in_the_local_bucket_forwarded_under_the_card_and_forgotten(stack):
    """The media bucket is part of the local stack (moto S3): an Instagram photo is fetched from its
    link, kept under the lead's prefix, forwarded under the card, and `leadflow forget` deletes it."""
    import boto3

    from tests.fakes.http import FakeServer, Response

    photo = b"\xff\xd8\xff\xe0" + b"nail-design" * 100
    state = json.loads((stack["cwd"] / ".leadflow" / f"local-{stack['port']}.json").read_text())
    s3 = boto3.client("s3", endpoint_url=state["aws_endpoint"], region_name="eu-central-1",
                      aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
    hooks = Webhooks(state["url"], state["secrets"])
    from datetime import UTC, datetime

    with FakeServer(lambda request: Response(200, photo, headers={"Content-Type": "image/jpeg"})) as cdn:
        delivery = hooks.instagram_text(
            "6543210987650001", "Хочу такой дизайн на маникюр завтра в 12:00, Вика, 89135551235",
            datetime.now(UTC), attachments=[{"type": "image", "payload": {"url": f"{cdn.url}/design.jpg"}}],
        )  # fmt: skip
        assert hooks.post(delivery).status_code == 200

        def forwarded():
            leads = json.loads(leadflow(stack["cwd"], "leads", "--json").stdout)
            mine = [lead for lead in leads if lead["contact"]["channel_user_id"] == "6543210987650001"]
            if not mine:
                return None
            outbox = json.loads(leadflow(stack["cwd"], "outbox", "--json").stdout)
            media = [m for m in outbox if m["lead_id"] == mine[0]["lead_id"] and m["kind"] == "client_media"]
            return (mine[0], media[0]) if media else None

        lead, media = wait_for(forwarded, timeout=40)
    assert media["text"].startswith("📷 Фото · Вика: Хочу такой дизайн")
    prefix = f"media/{lead['lead_id']}/"
    (kept,) = s3.list_objects_v2(Bucket="MediaBucket", Prefix=prefix)["Contents"]
    assert s3.get_object(Bucket="MediaBucket", Key=kept["Key"])["Body"].read() == photo

    forgot = leadflow(stack["cwd"], "forget", "+79135551235")
    assert forgot.returncode == 0, forgot.stderr
    assert "файлов (фото, голосовые) удалено: 1" in forgot.stdout
    assert s3.list_objects_v2(Bucket="MediaBucket", Prefix=prefix).get("KeyCount") == 0


def test_the_emulator_and_each_function_run_in_processes_of_their_own(stack):
    state = json.loads((stack["cwd"] / ".leadflow" / f"local-{stack['port']}.json").read_text())
    workers = state["workers"]
    assert sorted(workers) == ["escalate", "ingest", "panel", "remind", "route", "score"]
    pids = [state["emulator_pid"], *(pid for pids in workers.values() for pid in pids)]
    assert all(pids) and len(set(pids)) == len(pids) and stack["process"].pid not in pids
    assert set(pids) <= set(_descendants(stack["process"].pid))


def test_invoke_runs_a_sample_on_a_fresh_emulator_unless_told_the_port(stack):
    events = Path(__file__).resolve().parents[2] / "events"
    fresh = leadflow(stack["cwd"], "invoke", "ingest", "-e", str(events / "ingest" / "telegram_text.json"))
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["statusCode"] == 200  # the result alone on stdout, logs on stderr
    scored = leadflow(stack["cwd"], "invoke", "score", "-e", str(events / "score" / "inbound_message.json"))
    assert scored.returncode == 0, scored.stderr
    time.sleep(1)
    leads = json.loads(leadflow(stack["cwd"], "leads", "--json").stdout)
    samples = {"5123456789", "318224471"}  # the two samples' clients
    assert not [lead for lead in leads if lead["contact"]["channel_user_id"] in samples]

    told = leadflow(stack["cwd"], "invoke", "score", "-e", str(events / "score" / "inbound_message.json"),
                    "--port", str(stack["port"]))  # fmt: skip
    assert told.returncode == 0, told.stderr
    leads = json.loads(leadflow(stack["cwd"], "leads", "--json").stdout)
    assert [
        lead["contact"]["channel_user_id"] for lead in leads if lead["contact"]["channel_user_id"] in samples
    ] == ["318224471"]


def test_two_stacks_in_one_folder_keep_their_own_state(stack):
    port = _free_port()
    second = subprocess.Popen([*CLI, "up", "--port", str(port)], cwd=stack["cwd"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        assert second.stdout and second.stdout.readline().startswith("leadflow up: http://")
        ambiguous = leadflow(stack["cwd"], "leads")
        assert ambiguous.returncode == 1
        assert "several stacks run here, on ports" in ambiguous.stderr
        for running in (port, stack["port"]):
            assert f"{running} (http://127.0.0.1:{running})" in ambiguous.stderr
        assert "say which with --port N" in ambiguous.stderr
        assert leadflow(stack["cwd"], "leads", "--port", str(port)).returncode == 0
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=20)
    # stopping the second removed its own state, not the first one's
    assert not (stack["cwd"] / ".leadflow" / f"local-{port}.json").exists()
    assert (stack["cwd"] / ".leadflow" / f"local-{stack['port']}.json").exists()
    assert leadflow(stack["cwd"], "leads").returncode == 0


def test_ctrl_c_stops_everything_and_removes_the_state_file(stack):
    process = stack["process"]
    children = _descendants(process.pid)  # the emulator, the zygote and every worker
    assert len(children) >= 2 + 5
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    assert not (stack["cwd"] / ".leadflow" / f"local-{stack['port']}.json").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{stack['port']}/webhooks/telegram", timeout=2)
    wait_for(lambda: not any(_running(pid) for pid in children), timeout=10)


def _descendants(pid: int) -> list[int]:
    """Every process under `pid` (children, their children, …), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _running(pid: int) -> bool:
    """Still running? A zombie has finished (it only waits to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
