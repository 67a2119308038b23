"""`--stack NAME`: the CLI works on a deployed stack. moto stands in for AWS: a CloudFormation stack
made from template.yaml (its tables and queues under generated names, its real Outputs), and the
commands run in-process through `leadflow_local.cli.main` — they must find everything through
describe_stacks, never the local state file, and never scan the leads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from leadflow.adapters.store.config_store import ConfigStore
from leadflow.adapters.store.leads import LeadStore
from leadflow.domain.models import Lead
from leadflow_local.cli import main
from leadflow_local.deployed import CannotReach, DeployedStack, environment_sources
from tests.fakes.telegram_server import FakeTelegram
from tests.support.aws import REGION, SALON, WEBHOOK_BASE, deployed_stack
from tests.support.builders import lead

STACK = "salon-prod"
PREFIX = "/leadflow/salon"
IRINA = "+79161234567"


@pytest.fixture
def prod(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no local stack's state file to fall back on
    parameters = {"Stage": "prod", "SecretsPrefix": PREFIX, "SmsSender": "Lotos"}
    with deployed_stack(STACK, parameters) as stack:
        yield stack


@pytest.fixture
def scans():
    """Every DynamoDB Scan this process makes (clients are built after this hook is in place)."""
    calls: list[str] = []
    session = boto3._get_default_session()

    def record(**kwargs):
        calls.append(kwargs["model"].name)

    session.events.register("before-call.dynamodb.Scan", record, unique_id="count-scans")
    yield calls
    session.events.unregister("before-call.dynamodb.Scan", unique_id="count-scans")


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def seed(stack, *leads: Lead) -> None:
    store = LeadStore(stack.table("LeadsTable"))
    for item in leads:
        store.create(item)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --------------------------------------------------------------------------- reading


def test_leads_lists_the_stack_s_last_30_days_day_by_day_without_a_scan(prod, scans, capsys):
    seed(prod, lead("L-today", received_at=days_ago(0)), lead("L-week", received_at=days_ago(7)),
         lead("L-old", received_at=days_ago(45)))  # fmt: skip

    code, out, err = run(capsys, "leads", "--stack", STACK, "--json")

    assert code == 0, err
    assert [row["lead_id"] for row in json.loads(out)] == ["L-week", "L-today"]
    assert "--since for earlier ones" in err
    code, out, _ = run(
        capsys, "leads", "--stack", STACK, "--json", "--since", days_ago(60).date().isoformat()
    )
    assert [row["lead_id"] for row in json.loads(out)] == ["L-old", "L-week", "L-today"]
    assert scans == []


def test_kpi_counts_the_stack_s_leads(prod, scans, capsys):
    seed(prod, lead("L1", received_at=days_ago(1)), lead("L2", received_at=days_ago(2), temperature="hot"))

    code, out, err = run(capsys, "kpi", "--stack", STACK, "--json")

    assert code == 0, err
    kpis = json.loads(out)
    assert kpis["leads"] == 2 and kpis["temperature"] == {"hot": 1, "warm": 1}
    assert scans == []


def test_lead_shows_one_lead_of_the_stack(prod, capsys):
    seed(prod, lead("L-7", received_at=days_ago(1), contact={"name": "Ирина", "phone": IRINA}))

    code, out, _ = run(capsys, "lead", "L-7", "--stack", STACK, "--json")

    assert code == 0
    shown = json.loads(out)
    assert shown["lead_id"] == "L-7" and shown["contact"]["name"] == "Ирина" and shown["messages"] == []
    assert run(capsys, "lead", "L-nope", "--stack", STACK)[0] == 1


# --------------------------------------------------------------------------- dead letters


def test_dlq_shows_and_redrives_the_stack_s_dead_letters(prod, capsys):
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.send_message(QueueUrl=prod.queue_url("ScoreDeadLetterQueue"), MessageBody='{"message_id": "m-1"}',
                     MessageAttributes={"reason": {"DataType": "String", "StringValue": "ValidationError"}})  # fmt: skip

    code, out, _ = run(capsys, "dlq", "--stack", STACK)

    assert code == 0
    assert out.startswith("ScoreDeadLetterQueue: ") and "reason: ValidationError" in out
    assert run(capsys, "dlq", "redrive", "--stack", STACK)[1] == "redrove 1 message(s)\n"
    (back,) = sqs.receive_message(QueueUrl=prod.queue_url("ScoreQueue"))["Messages"]
    assert back["Body"] == '{"message_id": "m-1"}'
    assert "dead-letter queues are empty" in run(capsys, "dlq", "--stack", STACK)[1]


# --------------------------------------------------------------------------- changing


def test_config_push_stores_the_config_in_the_stack_s_config_table(prod, tmp_path, capsys):
    changed = tmp_path / "business.yaml"
    changed.write_text(
        SALON.read_text(encoding="utf-8").replace("hot_min: 15", "hot_min: 5"), encoding="utf-8"
    )

    code, out, err = run(capsys, "config", "push", str(changed), "--stack", STACK)

    assert code == 0, err
    assert out == f"{changed}: stored; functions pick it up within a minute\n"
    assert ConfigStore(prod.table("ConfigTable")).get(0).sla.hot_min == 5


def test_forget_erases_a_person_from_the_stack(prod, capsys):
    seed(prod, lead("L-9", received_at=days_ago(3), contact={"name": "Ирина", "phone": IRINA}))

    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=prod.bucket(), Key="media/L-9/whatsapp:wamid.A/0.jpg", Body=b"photo")
    s3.put_object(Bucket=prod.bucket(), Key="media/L-10/whatsapp:wamid.B/0.jpg", Body=b"someone else's")

    code, out, err = run(capsys, "forget", IRINA, "--stack", STACK)

    assert code == 0, err
    assert "лидов обезличено: 1" in out
    assert "файлов (фото, голосовые) удалено: 1" in out
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=prod.bucket()).get("Contents", [])]
    assert left == ["media/L-10/whatsapp:wamid.B/0.jpg"]
    kept = LeadStore(prod.table("LeadsTable")).get("L-9")
    assert kept is not None and kept.contact.phone is None and kept.contact.name is None


def test_staff_invite_is_stored_in_the_stack_s_staff_table(prod, capsys):
    code, out, _ = run(capsys, "staff", "invite", "anna", "--bot", "salon_lotos_bot", "--stack", STACK)

    assert code == 0 and "https://t.me/salon_lotos_bot?start=inv-" in out
    invites = [i for i in prod.table("StaffTable").scan()["Items"] if i["pk"].startswith("invite#")]
    assert [i["staff_id"] for i in invites] == ["anna"]


# --------------------------------------------------------------------------- the stack's own settings


def test_doctor_uses_the_stack_s_secrets_settings_and_webhook_url(prod, monkeypatch, capsys):
    with FakeTelegram() as telegram:
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name=f"{PREFIX}/TELEGRAM_BOT_TOKEN", Value=telegram.token, Type="SecureString"
        )
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name=f"{PREFIX}/TELEGRAM_WEBHOOK_SECRET", Value="tg-secret", Type="SecureString"
        )
        telegram.webhook = {"url": f"{WEBHOOK_BASE}/telegram"}
        monkeypatch.setenv("TELEGRAM_API_BASE", telegram.url)
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:a-token-of-this-shell-for-a-local-stack")
        monkeypatch.setenv("SMS_PROVIDER", "smsc")  # this shell's; the stack has none

        code, out, _ = run(capsys, "doctor", "--stack", STACK)

    assert code == 1  # nobody of the salon has connected to the bot yet
    lines = {line[9:27].strip(): line for line in out.splitlines()[1:-1]}
    assert out.splitlines()[0] == f"leadflow doctor: stack {STACK} ({REGION})"
    assert lines["telegram bot"].startswith("ok") and lines["telegram webhook"].startswith("ok")
    assert lines["sms"].startswith("skipped")
    assert lines["staff"].startswith("problem")
    assert lines["staff"].endswith(
        "leadflow staff invite ID --bot salon_lotos_bot --stack salon-prod for each"
    )
    assert telegram.token not in out


def test_an_unknown_stack_says_so_and_exits_1(prod, capsys):
    code, out, err = run(capsys, "leads", "--stack", "salon-staging")

    assert code == 1 and out == ""
    assert err == (
        "leadflow leads: no CloudFormation stack 'salon-staging' in eu-central-1 "
        "(AWS_REGION / AWS_PROFILE choose the region)\n"
    )


def test_every_variable_the_functions_get_has_its_source_in_a_deployed_stack():
    sources = environment_sources()

    assert sources["LEADS_TABLE"] == ("output", "LeadsTableName")
    assert sources["SCORE_QUEUE_URL"] == ("output", "ScoreQueueUrl")
    assert sources["RATE_LIMIT_TABLE"] == ("output", "RateLimitTableName")
    assert sources["SECRETS_PREFIX"] == ("parameter", "SecretsPrefix")
    assert sources["SMS_PROVIDER"] == ("parameter", "SmsProvider")


def test_a_stack_deployed_before_the_media_bucket_has_no_bucket_for_forget_to_clean():
    outputs = {key: "x" for kind, key in environment_sources().values() if kind == "output"}
    environment = DeployedStack(STACK, REGION, outputs, {}).environment()
    assert environment["MEDIA_BUCKET"] == ""  # unset: `forget` says files were not checked
    assert (
        DeployedStack(STACK, REGION, outputs | {"MediaBucketName": "b-1"}, {}).environment()["MEDIA_BUCKET"]
        == "b-1"
    )


def test_a_stack_from_an_older_template_is_told_to_redeploy():
    old = DeployedStack(STACK, REGION, {"ConfigTableName": "t", "WebhookBaseUrl": WEBHOOK_BASE}, {})

    with pytest.raises(CannotReach, match="no output LeadsTableName: it was deployed from an older template"):
        old.environment()


def test_lead_shows_the_card_as_its_owner_sees_it(prod, capsys):
    seed(prod, lead("L-8", received_at=days_ago(1), contact={"name": "Ирина", "phone": IRINA}))

    code, out, _ = run(capsys, "lead", "L-8", "--stack", STACK)

    assert code == 0
    card = [line.partition("│ ")[2] for line in out.splitlines() if "│ " in line]
    assert card[0].startswith("Лид L-8") and "Имя: Ирина" in card
    assert "conversation and timeline:" in out
