"""`leadflow dlq [redrive] --yandex OUTPUTS.json`: the dead letters of a Yandex Cloud deployment,
its queues named by `terraform output -json` (moto stands in for Message Queue, which speaks the
same SQS API): shown with their reason, and sent back to the queue they came from."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from leadflow_local.cli import main

REGION = "eu-central-1"


@pytest.fixture
def deployment(tmp_path):
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        urls = {name: sqs.create_queue(QueueName=f"leadflow-salon-{name}")["QueueUrl"]
                for name in ("score", "score-dlq", "route", "route-dlq")}  # fmt: skip
        outputs = {  # the shape of `terraform output -json`
            "queue_urls": {"sensitive": False, "type": ["object", {}], "value": {"score": urls["score"], "route": urls["route"]}},
            "dlq_urls": {"sensitive": False, "type": ["object", {}], "value": {"score": urls["score-dlq"], "route": urls["route-dlq"]}},
            "webhook_base_url": {"sensitive": False, "type": "string", "value": "https://d5d.apigw.yandexcloud.net"},
        }  # fmt: skip
        path = tmp_path / "outputs.json"
        path.write_text(json.dumps(outputs), encoding="utf-8")
        yield sqs, urls, str(path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dead_letters_are_shown_with_their_reason_and_redriven_to_their_queue(deployment, capsys):
    sqs, urls, outputs = deployment
    sqs.send_message(QueueUrl=urls["route-dlq"], MessageBody='{"type": "lead_ready", "lead_id": "L-1"}',
                     MessageAttributes={"reason": {"DataType": "String", "StringValue": "CrmUnavailable: 503"}})  # fmt: skip

    code, out, _ = run(capsys, "dlq", "--yandex", outputs)
    assert code == 0 and out.startswith("RouteDeadLetterQueue: ") and "reason: CrmUnavailable: 503" in out

    assert run(capsys, "dlq", "redrive", "--yandex", outputs)[1] == "redrove 1 message(s)\n"
    (back,) = sqs.receive_message(QueueUrl=urls["route"], MessageAttributeNames=["All"])["Messages"]
    assert back["Body"] == '{"type": "lead_ready", "lead_id": "L-1"}'
    assert "leadflow_attempt" not in back.get("MessageAttributes", {})  # a redrive starts the attempts afresh
    assert "dead-letter queues are empty" in run(capsys, "dlq", "--yandex", outputs)[1]


def test_a_file_that_is_not_terraforms_outputs_is_refused_clearly(deployment, capsys, tmp_path):
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"webhook_base_url": {"value": "https://x"}}', encoding="utf-8")
    code, _, err = run(capsys, "dlq", "--yandex", str(wrong))
    assert code == 2 and "not `terraform output -json` of deploy/yandex" in err
    assert run(capsys, "dlq", "--yandex", str(tmp_path / "missing.json"))[0] == 2
