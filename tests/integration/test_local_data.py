"""`leadflow up --data DIR`: leads, conversations and queued messages survive a restart."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from leadflow_local.webhooks import Webhooks
from tests.integration.test_local_stack import CLI, _free_port, leadflow, wait_for

pytestmark = pytest.mark.integration


def _up(cwd: Path, port: int, *extra: str) -> tuple[subprocess.Popen, list[str]]:
    process = subprocess.Popen([*CLI, "up", "--port", str(port), *extra], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert process.stdout
    lines = []
    while not (line := process.stdout.readline()).startswith("AWS emulator:"):
        assert line, f"leadflow up ended: {lines}"
        lines.append(line.strip())
    return process, lines


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0


def test_a_stack_with_data_keeps_its_leads_and_queues_across_a_restart(tmp_path):
    data = tmp_path / "salon-data"
    port = _free_port()
    process, lines = _up(tmp_path, port, "--data", str(data))
    try:
        assert f"data: {data} (nothing yet restored" in "\n".join(lines)
        state = json.loads((tmp_path / ".leadflow" / f"local-{port}.json").read_text())
        hooks = Webhooks(state["url"], state["secrets"])
        delivery = hooks.telegram_text(
            66001, "Вера", "Хочу на стрижку завтра в 12:00, мой номер 89135550011", datetime.now(UTC)
        )
        assert hooks.post(delivery).status_code == 200

        def owned():
            leads = json.loads(leadflow(tmp_path, "leads", "--json").stdout)
            return [lead for lead in leads if lead["owner"]] or None

        (lead,) = wait_for(owned)
        # a message nobody consumes locally: it must come back as it was
        sqs = boto3.client("sqs", endpoint_url=state["aws_endpoint"], region_name="eu-central-1",
                           aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
        dlq = sqs.get_queue_url(QueueName="ScoreDeadLetterQueue")["QueueUrl"]
        sqs.send_message(QueueUrl=dlq, MessageBody='{"type": "inbound", "schema_version": 99}',
                         MessageAttributes={"reason": {"DataType": "String", "StringValue": "kept"}})  # fmt: skip
    finally:
        _stop(process)
    assert (data / "snapshot.json").exists()

    port = _free_port()
    process, lines = _up(tmp_path, port, "--data", str(data))
    try:
        restored = next(line for line in lines if line.startswith("data:"))
        assert "1 queued messages restored" in restored
        leads = json.loads(leadflow(tmp_path, "leads", "--json").stdout)
        assert [(x["lead_id"], x["owner"], x["service"]) for x in leads] == [
            (lead["lead_id"], lead["owner"], lead["service"])
        ]
        conversation = json.loads(leadflow(tmp_path, "lead", lead["lead_id"], "--json").stdout)
        assert "стрижку" in json.dumps(conversation, ensure_ascii=False)
        (dead,) = json.loads(leadflow(tmp_path, "dlq", "--json").stdout)
        assert dead["queue"] == "ScoreDeadLetterQueue"
        # the same client writes again: the restored contact and lead are found, not a new lead
        state = json.loads((tmp_path / ".leadflow" / f"local-{port}.json").read_text())
        hooks = Webhooks(state["url"], state["secrets"])
        again = hooks.telegram_text(66001, "Вера", "А во сколько можно?", datetime.now(UTC))
        assert hooks.post(again).status_code == 200
        time.sleep(2)
        assert len(json.loads(leadflow(tmp_path, "leads", "--json").stdout)) == 1
    finally:
        _stop(process)


def test_without_data_up_says_that_stopping_forgets(tmp_path):
    process, lines = _up(tmp_path, _free_port())
    try:
        assert any(line.startswith("data: in memory only") for line in lines)
    finally:
        _stop(process)


def test_a_damaged_snapshot_stops_up_with_a_clear_message_and_is_left_alone(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "snapshot.json").write_text("{not json", encoding="utf-8")
    result = subprocess.run([*CLI, "up", "--port", str(_free_port()), "--data", str(data)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 1
    assert "is not a leadflow snapshot" in result.stderr and "Traceback" not in result.stderr
    assert (data / "snapshot.json").read_text(encoding="utf-8") == "{not json"


def test_two_stacks_cannot_share_one_data_directory(tmp_path):
    data = tmp_path / "data"
    process, _ = _up(tmp_path, _free_port(), "--data", str(data))
    try:
        result = subprocess.run([*CLI, "up", "--port", str(_free_port()), "--data", str(data)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert result.returncode == 1
        assert "is used by another running `leadflow up`" in result.stderr
    finally:
        _stop(process)


def test_clients_files_survive_a_restart_and_a_forgotten_one_does_not(tmp_path):
    data = tmp_path / "data"
    port = _free_port()
    process, _ = _up(tmp_path, port, "--data", str(data))
    try:
        state = json.loads((tmp_path / ".leadflow" / f"local-{port}.json").read_text())
        s3 = boto3.client("s3", endpoint_url=state["aws_endpoint"], region_name="eu-central-1",
                          aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
        kept, forgotten = "media/L1a2b3c4d5e6f/whatsapp:wamid.A/0.jpg", "media/L999/vk:e1/0.ogg"
        s3.put_object(Bucket="MediaBucket", Key=kept, Body=b"\xff\xd8photo")
        s3.put_object(Bucket="MediaBucket", Key=forgotten, Body=b"OggSvoice")
    finally:
        _stop(process)
    assert (data / "media" / "MediaBucket" / forgotten).read_bytes() == b"OggSvoice"
    assert (data / "media" / "MediaBucket" / kept).stat().st_mode & 0o077 == 0  # personal data: owner only

    port = _free_port()
    process, lines = _up(tmp_path, port, "--data", str(data))
    try:
        assert "1 clients' files" not in "\n".join(lines) and "2 clients' files" in "\n".join(lines)
        state = json.loads((tmp_path / ".leadflow" / f"local-{port}.json").read_text())
        s3 = boto3.client("s3", endpoint_url=state["aws_endpoint"], region_name="eu-central-1",
                          aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
        assert s3.get_object(Bucket="MediaBucket", Key=kept)["Body"].read() == b"\xff\xd8photo"
        s3.delete_object(Bucket="MediaBucket", Key=forgotten)  # as `leadflow forget` does
    finally:
        _stop(process)
    assert (data / "media" / "MediaBucket" / kept).exists()
    assert not (data / "media" / "MediaBucket" / forgotten).exists()
