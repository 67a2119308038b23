"""deploy/yandex cannot drift from template.yaml: it declares every function (memory, timeout,
the secrets it reads), every queue with its DLQ and trigger, every schedule, every table with the
same keys, indexes and TTL, and the webhook routes — and grants no role broader than a function
needs. Terraform itself cannot run here; python-hcl2 parses what it would read."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadflow_local.template import _CfnLoader

hcl2 = pytest.importorskip("hcl2")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "yandex"
TEMPLATE = ROOT / "template.yaml"
# What any function here may be granted: the narrowest role of each service it uses.
ALLOWED_ROLES = {
    "ydb.editor",
    "ymq.writer",
    "ymq.reader",
    "serverless.functions.invoker",
    "lockbox.payloadViewer",
}


def plain(value: Any) -> Any:
    """python-hcl2 keeps a string's quotes (and marks blocks); the values as Terraform reads them."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")}
    return value


@pytest.fixture(scope="module")
def tf() -> dict[str, Any]:
    merged: dict[str, Any] = {"resource": {}, "locals": {}, "variable": {}}
    for path in sorted(DEPLOY.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            parsed = plain(hcl2.load(handle))
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                merged["resource"].setdefault(kind, {}).update(named)
        for block in parsed.get("locals", []):
            merged["locals"].update(block)
        for block in parsed.get("variable", []):
            merged["variable"].update(block)
    return merged


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if isinstance(v, dict) and v.get("Type") == kind}


def functions(template: dict) -> dict[str, dict]:
    """ingest, score, … → the function's Properties."""
    return {
        name.removesuffix("Function").lower(): f["Properties"]
        for name, f in resources(template, "AWS::Serverless::Function").items()
    }


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def ssm_secrets(properties: dict) -> set[str]:
    found = set()
    for policy in properties.get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if statement.get("Action") == ["ssm:GetParameter"]:
                found |= {r["Fn::Sub"].rsplit("/", 1)[-1] for r in statement["Resource"]}
    return found


def test_every_function_with_its_memory_timeout_and_only_its_secrets(tf, template):
    declared = tf["locals"]["functions"]
    default_memory = template["Globals"]["Function"]["MemorySize"]
    assert set(declared) == set(functions(template))
    for name, props in functions(template).items():
        spec = declared[name]
        assert spec["memory"] == props.get("MemorySize", default_memory), name
        assert spec["timeout"] == props["Timeout"], name
        assert set(spec["secrets"]) == ssm_secrets(props), name
    function = tf["resource"]["yandex_function"]["fn"]
    assert function["for_each"] == "${local.functions}" and function["runtime"] == "python312"
    assert function["entrypoint"] == "app.handler"


def test_every_queue_has_its_dlq_with_redrive_and_the_trigger_of_its_consumer(tf, template):
    queues = resources(template, "AWS::SQS::Queue")
    sources = {n for n, q in queues.items() if "RedrivePolicy" in q["Properties"]}
    consumers = {}
    for name, props in functions(template).items():
        for event in props.get("Events", {}).values():
            if event["Type"] == "SQS":
                consumers[event["Properties"]["Queue"]["Fn::GetAtt"][0]] = name
    declared = tf["locals"]["queues"]
    assert set(declared) == {n.removesuffix("Queue").lower() for n in sources}
    for source in sources:
        key = source.removesuffix("Queue").lower()
        assert declared[key]["function"] == consumers[source]
        dlq = queues[source]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert dlq == f"{source.removesuffix('Queue')}DeadLetterQueue"
    queue = tf["resource"]["yandex_message_queue"]["queue"]
    assert "yandex_message_queue.dlq[each.key].arn" in queue["redrive_policy"]
    assert "var.max_receive_count" in queue["redrive_policy"]
    assert tf["resource"]["yandex_message_queue"]["dlq"]["for_each"] == "${local.queues}"
    trigger = tf["resource"]["yandex_function_trigger"]["queue"]
    (source,) = trigger["message_queue"]
    assert source["queue_id"] == "${yandex_message_queue.queue[each.key].arn}"
    assert trigger["function"][0]["id"] == "${yandex_function.fn[each.value.function].id}"


def every_minutes(cron: str) -> int:
    minutes, hours, day, month, weekday, *year = cron.split()
    assert (hours, day, month, weekday, year) == ("*", "?", "*", "*", ["*"]), cron
    return 1 if minutes == "*" else int(minutes.split("/")[1])


def test_every_schedule_is_a_timer_at_the_same_rate(tf, template):
    rates = {}
    for name, props in functions(template).items():
        for event in props.get("Events", {}).values():
            if event["Type"] == "Schedule":
                number = re.fullmatch(r"rate\((\d+) minutes?\)", event["Properties"]["Schedule"]).group(1)
                rates[name] = int(number)
    schedules = tf["locals"]["schedules"]
    assert {name: every_minutes(cron) for name, cron in schedules.items()} == rates
    timer = tf["resource"]["yandex_function_trigger"]["timer"]
    assert timer["function"][0]["id"] == "${yandex_function.fn[each.key].id}"


def test_every_table_with_the_same_keys_indexes_and_ttl(tf, template):
    declared = tf["resource"]["aws_dynamodb_table"]
    tables = resources(template, "AWS::DynamoDB::Table")
    assert set(declared) == {snake(n.removesuffix("Table")) for n in tables}
    for name, table in tables.items():
        props, mine = table["Properties"], declared[snake(name.removesuffix("Table"))]
        keys = {k["KeyType"]: k["AttributeName"] for k in props["KeySchema"]}
        assert (mine["hash_key"], mine.get("range_key")) == (keys["HASH"], keys.get("RANGE")), name
        assert {(a["name"], a["type"]) for a in mine["attribute"]} == {
            (a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]
        }, name
        indexes = {
            i["IndexName"]: {k["KeyType"]: k["AttributeName"] for k in i["KeySchema"]}
            for i in props.get("GlobalSecondaryIndexes", [])
        }
        assert {i["name"]: {"HASH": i["hash_key"], **({"RANGE": i["range_key"]} if "range_key" in i else {})}
                for i in mine.get("global_secondary_index", [])} == indexes, name  # fmt: skip
        assert all(i["projection_type"] == "ALL" for i in mine.get("global_secondary_index", []))
        ttl = props.get("TimeToLiveSpecification")
        assert [(t["attribute_name"], t["enabled"]) for t in mine.get("ttl", [])] == (
            [(ttl["AttributeName"], True)] if ttl else []
        ), name
        assert mine["billing_mode"] == "PAY_PER_REQUEST"
        assert mine["lifecycle"][0]["prevent_destroy"] is True, name  # as DeletionPolicy: Retain
        env = f"{snake(name.removesuffix('Table')).upper()}_TABLE"
        assert (
            tf["locals"]["tables"][env] == f"${{aws_dynamodb_table.{snake(name.removesuffix('Table'))}.name}}"
        )


def _routes(template: dict, function: str) -> set[tuple[str, str]]:
    """(method, path) of a function's HTTP API events; ANY is Yandex's x-yc-apigateway-any-method."""
    found = set()
    for event in functions(template)[function]["Events"].values():
        if event["Type"] == "HttpApi":
            method = event["Properties"]["Method"].lower()
            found.add(
                ("x-yc-apigateway-any-method" if method == "any" else method, event["Properties"]["Path"])
            )
    return found


def test_the_webhook_and_panel_routes_reach_their_functions_in_payload_format_1_0(tf, template):
    spec = yaml.safe_load((DEPLOY / "api_gateway.yaml.tftpl").read_text(encoding="utf-8"))
    declared = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert declared == _routes(template, "ingest") | _routes(template, "panel")
    for path, ops in spec["paths"].items():
        for op in ops.values():
            integration = op["x-yc-apigateway-integration"]
            assert integration["type"] == "cloud_functions" and integration["payload_format_version"] == "1.0"
            to_panel = path.startswith(("/panel", "/ics/"))
            wanted = "${panel_function_id}" if to_panel else "${function_id}"
            assert integration["function_id"] == wanted, path
    gateway = tf["resource"]["yandex_api_gateway"]["webhooks"]
    assert 'yandex_function.fn["ingest"].id' in gateway["spec"]
    assert 'yandex_function.fn["panel"].id' in gateway["spec"]


def all_roles(tf: dict) -> list[tuple[str, str, dict]]:
    return [
        (kind, name, body)
        for kind, named in tf["resource"].items()
        for name, body in named.items()
        if "role" in body
    ]


def test_no_role_is_broader_than_a_function_needs(tf, template):
    roles = all_roles(tf)
    assert roles and {body["role"] for _, _, body in roles} <= ALLOWED_ROLES
    # ymq.writer exactly for the functions that send to a queue on AWS
    senders = {
        name for name, props in functions(template).items()
        if any(isinstance(p, dict) and "SQSSendMessagePolicy" in p for p in props.get("Policies", []))
    }  # fmt: skip
    assert {n for n, spec in tf["locals"]["functions"].items() if spec["sends"]} == senders
    writer = tf["resource"]["yandex_resourcemanager_folder_iam_member"]["sends"]
    assert writer["role"] == "ymq.writer" and "if spec.sends" in writer["for_each"]
    # reading queues: the triggers' account only; the database: ydb.editor on this database only
    assert tf["resource"]["yandex_resourcemanager_folder_iam_member"]["trigger_reads"]["member"] == (
        "serviceAccount:${yandex_iam_service_account.trigger.id}"
    )
    assert tf["resource"]["yandex_ydb_database_iam_binding"]["functions"]["database_id"] == (
        "${yandex_ydb_database_serverless.db.id}"
    )
    # ingest and the panel are invoked by the gateway alone, the others by the triggers alone
    invoker = tf["resource"]["yandex_function_iam_binding"]["invoker"]
    assert "yandex_iam_service_account.gateway.id" in invoker["members"][0]
    assert 'contains(["ingest", "panel"], each.key)' in invoker["members"][0]
    # each function reads only its own Lockbox secrets
    for binding in tf["resource"]["yandex_lockbox_secret_iam_binding"].values():
        assert binding["members"] == ["serviceAccount:${yandex_iam_service_account.fn[each.key].id}"]


def test_the_functions_get_template_yamls_environment_and_know_they_run_on_yandex(tf, template):
    env = tf["locals"]["environment"]
    names = set(re.findall(r"\b([A-Z][A-Z0-9_]+) = ", env)) | set(tf["locals"]["tables"])
    plain_settings = tf["variable"]["settings"]["description"]
    not_here = {"SECRETS_PREFIX", "POWERTOOLS_TRACER_CAPTURE_RESPONSE"}  # Lockbox → env; no X-Ray
    for name in template["Globals"]["Function"]["Environment"]["Variables"]:
        assert name in names or name in plain_settings or name in not_here, name
    assert re.search(r'LEADFLOW_PLATFORM = "yandex"', env)
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS", "AWS_DEFAULT_REGION"):
        assert name in names
    function = tf["resource"]["yandex_function"]["fn"]
    for queue in ("score", "route"):
        assert f'DLQ_URL = yandex_message_queue.dlq["{queue}"].id' in function["environment"]
    keys = {s["key"] for s in function["secrets"] if "key" in s}
    assert keys == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # the static key, from Lockbox
