"""deploy/yandex/smoke.py runs every check and cleans up after itself. Here it runs against the AWS
emulator, where every point holds but one (DynamoDB accepts KEYS_ONLY); on Yandex Cloud it tells
the user which of the undocumented points hold there."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import boto3
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("yandex_smoke", ROOT / "deploy" / "yandex" / "smoke.py")
assert spec and spec.loader
smoke = importlib.util.module_from_spec(spec)
spec.loader.exec_module(smoke)


def test_every_check_runs_reports_and_leaves_nothing_behind(capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-central-1")
        sqs = boto3.client("sqs", region_name="eu-central-1")
        assert smoke.main([], dynamodb=dynamodb, sqs=sqs) == 0
        assert dynamodb.list_tables()["TableNames"] == []
        assert not sqs.list_queues().get("QueueUrls")
    lines = capsys.readouterr().out.splitlines()
    results = {line.split("] ", 1)[1].split(":", 1)[0]: line[:6] for line in lines if line.startswith("[")}
    assert "[?? ]" not in results.values()
    assert results.pop("KEYS_ONLY projection refused") == "[NO ] "
    assert set(results.values()) == {"[yes] "} and len(results) == 7
    assert lines[-1] == "7 of 8 hold"
