"""template.yaml keeps a business's data and an account's capacity safe: tables survive a
`sam delete` and can be restored to a point in time, logs expire, queue consumers cannot take the
account's whole concurrency, and each function can read only the secrets it needs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from leadflow_local.template import _CfnLoader

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
FUNCTIONS = ("Ingest", "Score", "Route", "Escalate", "Remind", "Panel")
WEBHOOK_SECRETS = {
    "TELEGRAM_WEBHOOK_SECRET", "META_APP_SECRET", "META_VERIFY_TOKEN", "VK_CONFIRMATION_CODE", "VK_SECRET",
    "FORM_SECRET", "CALL_SECRET", "BITRIX24_APP_TOKEN", "SMS_WEBHOOK_SECRET", "AMOCRM_WEBHOOK_SECRET",
    "YCLIENTS_WEBHOOK_SECRET",
}  # fmt: skip
CRM_SECRETS = {"BITRIX24_WEBHOOK_URL", "AMOCRM_TOKEN", "GOOGLE_SERVICE_ACCOUNT_JSON"}
SENDING_SECRETS = {
    "TELEGRAM_BOT_TOKEN",
    "WHATSAPP_TOKEN",
    "INSTAGRAM_TOKEN",
    "VK_TOKEN",
    "MANYCHAT_API_TOKEN",  # builder leads are answered in the builder's chat
    "CHATFUEL_API_TOKEN",
    "SMS_API_KEY",
    "SMS_LOGIN",
}


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def _resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if isinstance(v, dict) and v.get("Type") == kind}


def test_every_table_survives_a_delete_and_can_be_restored(template):
    tables = _resources(template, "AWS::DynamoDB::Table")
    assert len(tables) >= 8
    for name, table in tables.items():
        assert table.get("DeletionPolicy") == "Retain", name
        assert table.get("UpdateReplacePolicy") == "Retain", name
        assert table["Properties"]["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True
        }, name
        assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}, name


def test_every_function_logs_to_a_group_with_a_retention(template):
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30
    for function in FUNCTIONS:
        props = template["Resources"][f"{function}Function"]["Properties"]
        group = template["Resources"][f"{function.lower()}LogGroup"]
        assert props["LoggingConfig"] == {"LogGroup": {"Ref": f"{function.lower()}LogGroup"}}
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert group["DeletionPolicy"] == "Retain"
        assert props["FunctionName"] == {"Fn::Sub": f"leadflow-${{Stage}}-{function.lower()}"}


def test_queue_consumers_are_bounded_and_reserved_concurrency_is_opt_in(template):
    assert template["Parameters"]["QueueConcurrency"]["Default"] == 5
    for function in ("Score", "Route"):
        events = template["Resources"][f"{function}Function"]["Properties"]["Events"]
        (sqs,) = [e for e in events.values() if e["Type"] == "SQS"]
        assert sqs["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "QueueConcurrency"}}
    assert template["Parameters"]["ReservedConcurrency"]["Default"] == ""
    reserved = template["Globals"]["Function"]["ReservedConcurrentExecutions"]
    assert reserved == {
        "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }


def _secrets(template: dict, function: str) -> set[str]:
    policies = template["Resources"][f"{function}Function"]["Properties"]["Policies"]
    found: set[str] = set()
    for policy in policies:
        assert not (isinstance(policy, dict) and "SSMParameterWithSlashPrefixReadPolicy" in policy), (
            f"{function} may read every secret under the prefix"
        )
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if any(a.startswith("ssm:") for a in statement["Action"]):
                for resource in statement["Resource"]:
                    found.add(re.sub(r".*parameter\$\{SecretsPrefix\}/", "", resource["Fn::Sub"]))
    return found


def test_each_function_reads_only_the_secrets_it_needs(template):
    # no bot token, LLM key or CRM URL; SMS_API_KEY because SMS.ru signs its callbacks with the
    # api_id (Trust issue, item 13: without it every SMS.ru callback was refused in AWS)
    assert _secrets(template, "Ingest") == WEBHOOK_SECRETS | {"SMS_API_KEY"}
    booking = {
        "YCLIENTS_PARTNER_TOKEN",
        "YCLIENTS_USER_TOKEN",
    }  # the bot books; «Записан» checks the calendar
    assert _secrets(template, "Score") == SENDING_SECRETS | {"OPENAI_API_KEY", "TRANSCRIBE_API_KEY"} | booking
    payments = {"YOOKASSA_SHOP_ID", "YOOKASSA_SECRET_KEY"}  # a paid prepayment is re-read from ЮKassa
    assert _secrets(template, "Route") == SENDING_SECRETS | CRM_SECRETS | booking | payments
    assert _secrets(template, "Escalate") == {"TELEGRAM_BOT_TOKEN"} | CRM_SECRETS
    assert _secrets(template, "Remind") == SENDING_SECRETS | CRM_SECRETS
    # the panel sends a moved lead's card to its new owner (Telegram) and tells the CRM
    assert _secrets(template, "Panel") == {"TELEGRAM_BOT_TOKEN"} | CRM_SECRETS


def _bucket_grants(template: dict, function: str) -> set[str]:
    found: set[str] = set()
    for policy in template["Resources"][f"{function}Function"]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = [a for a in statement["Action"] if a.startswith("s3:")]
            if actions:
                assert statement["Resource"] == {"Fn::Sub": "${MediaBucket.Arn}/media/*"}, function
                found.update(actions)
    return found


def test_clients_files_are_kept_private_encrypted_and_only_for_a_while(template):
    bucket = template["Resources"]["MediaBucket"]
    props = bucket["Properties"]
    assert bucket.get("DeletionPolicy") != "Retain"  # personal data that must end (152-FZ)
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }  # fmt: skip
    (expiry,) = props["LifecycleConfiguration"]["Rules"]
    assert expiry["Status"] == "Enabled"
    assert expiry["ExpirationInDays"] == {"Ref": "MediaRetentionDays"}
    assert template["Parameters"]["MediaRetentionDays"]["Default"] == 30
    (tls,) = template["Resources"]["MediaBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_the_functions_that_handle_clients_files_reach_the_bucket(template):
    assert _bucket_grants(template, "Score") == {"s3:PutObject", "s3:GetObject"}  # fetched files kept
    assert _bucket_grants(template, "Route") == {"s3:GetObject"}  # forwarded under a new card
    assert _bucket_grants(template, "Escalate") == {"s3:GetObject"}  # a reassigned lead's new card
    assert _bucket_grants(template, "Ingest") == set()  # answers at once: no file is fetched there
    assert _bucket_grants(template, "Remind") == set()
    for function in ("Score", "Route", "Escalate"):
        env = template["Resources"][f"{function}Function"]["Properties"]["Environment"]["Variables"]
        assert env["MEDIA_BUCKET"] == {"Ref": "MediaBucket"}
    assert "MEDIA_BUCKET" not in template["Globals"]["Function"]["Environment"]["Variables"]


def test_transcription_and_chatfuel_settings_are_stack_parameters(template):
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for variable, parameter in {
        "TRANSCRIBE_BASE_URL": "TranscribeBaseUrl", "TRANSCRIBE_MODEL": "TranscribeModel",
        "CHATFUEL_BOT_ID": "ChatfuelBotId", "CHATFUEL_BLOCK": "ChatfuelBlock",
        "TELEGRAM_BOT_USERNAME": "TelegramBotUsername",
    }.items():  # fmt: skip
        assert variables[variable] == {"Ref": parameter}
        assert template["Parameters"][parameter]["Default"] == ""


def test_one_receive_limit_one_rate_limit_policy_one_alarm_definition(template):
    for queue in ("ScoreQueue", "RouteQueue"):
        assert template["Resources"][queue]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == {
            "Ref": "MaxReceiveCount"
        }
    assert template["Globals"]["Function"]["Environment"]["Variables"]["LEADFLOW_MAX_RECEIVES"] == {
        "Ref": "MaxReceiveCount"
    }
    (policy,) = _resources(template, "AWS::IAM::ManagedPolicy")
    users = [
        f
        for f in FUNCTIONS
        if {"Ref": policy} in template["Resources"][f"{f}Function"]["Properties"]["Policies"]
    ]
    assert users == ["Score", "Route", "Escalate", "Remind", "Panel"]
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    assert sorted(alarms) == [
        "DeadLetterAlarm",
        "FunctionErrorsAlarm",
    ]  # one definition each, every source in it
    watched = {m["Id"] for m in alarms["FunctionErrorsAlarm"]["Properties"]["Metrics"] if "MetricStat" in m}
    assert watched == {f.lower() for f in FUNCTIONS}
    queues = {m["Id"] for m in alarms["DeadLetterAlarm"]["Properties"]["Metrics"] if "MetricStat" in m}
    assert queues == {"score", "route", "stats"}


def test_the_outputs_name_every_table_and_queue_so_the_cli_finds_a_deployed_stack(template):
    """`leadflow … --stack NAME` reads these (leadflow_local.deployed); the existing names stay."""
    outputs = template["Outputs"]
    for table in _resources(template, "AWS::DynamoDB::Table"):
        assert outputs[f"{table}Name"]["Value"] == {"Ref": table}
    for queue in _resources(template, "AWS::SQS::Queue"):
        assert outputs[f"{queue}Url"]["Value"] == {"Fn::GetAtt": [queue, "QueueUrl"]}
    assert outputs["SecretsPrefix"]["Value"] == {"Ref": "SecretsPrefix"}
    earlier = {"WebhookBaseUrl", "ScoreDeadLetterQueueUrl", "RouteDeadLetterQueueUrl", "ConfigTableName"}
    assert earlier <= set(outputs)


def test_no_key_is_written_twice():
    # Two merges each added a PublicBaseUrl parameter: YAML keeps the last one silently, cfn-lint
    # (sam validate --lint) refuses the template.
    class Strict(_CfnLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        keys = [loader.construct_object(key) for key, _ in node.value]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        assert not twice, f"written twice at line {node.start_mark.line + 1}: {twice}"
        return loader.construct_mapping(node)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=Strict)  # noqa: S506 - our own loader
