"""Read template.yaml — the one source of truth for tables, queues, schedules and each
function's environment — so the local stack never declares a resource twice."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
# The stack's parameters as the local stack deploys it: no SSM (secrets from the environment).
LOCAL_PARAMETERS = {"Stage": "local", "SecretsPrefix": "", "AlarmEmail": "", "ReservedConcurrency": ""}
# Plain settings the deployed stack takes as parameters come from the environment locally.
FROM_ENVIRONMENT = ("SmsProvider", "SmsSender", "WhatsAppPhoneNumberId", "VkGroupId", "CallTimezone",
                    "OpenAiBaseUrl", "OpenAiModel", "TranscribeBaseUrl", "TranscribeModel", "ChatfuelBotId",
                    "ChatfuelBlock", "AmoCrmBaseUrl", "GoogleSheetsApiBase", "GoogleOAuthTokenUrl", "PublicBaseUrl",
                    "TelegramBotUsername")  # fmt: skip


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub, …) read as their long forms."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass
class FunctionSpec:
    logical_id: str
    name: str  # ingest, score, …
    code_dir: Path
    handler: str
    timeout: int
    environment: dict[str, Any]
    sqs_sources: list[dict] = field(default_factory=list)  # {queue, batch_size, window_s}
    schedules: list[str] = field(default_factory=list)  # rate(…) expressions
    stream_sources: list[dict] = field(
        default_factory=list
    )  # {table, batch_size, window_s}: DynamoDB streams


@dataclass
class Template:
    resources: dict[str, dict]
    globals_env: dict[str, Any]
    globals_timeout: int

    def of_type(self, kind: str) -> dict[str, dict]:
        # Fn::ForEach loops (alarms, log groups) are lists, not resources: nothing the local stack runs.
        return {k: v for k, v in self.resources.items() if isinstance(v, dict) and v.get("Type") == kind}

    def tables(self) -> dict[str, dict]:
        return {k: v.get("Properties", {}) for k, v in self.of_type("AWS::DynamoDB::Table").items()}

    def buckets(self) -> dict[str, dict]:
        return {k: v.get("Properties", {}) for k, v in self.of_type("AWS::S3::Bucket").items()}

    def queues(self) -> dict[str, dict]:
        return {k: v.get("Properties", {}) for k, v in self.of_type("AWS::SQS::Queue").items()}

    def functions(self) -> dict[str, FunctionSpec]:
        specs = {}
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            name = logical_id.removesuffix("Function").lower()
            env = {**self.globals_env, **props.get("Environment", {}).get("Variables", {})}
            spec = FunctionSpec(
                logical_id=logical_id,
                name=name,
                code_dir=ROOT / props["CodeUri"],
                handler=props.get("Handler", "app.handler"),
                timeout=int(props.get("Timeout", self.globals_timeout)),
                environment=env,
            )
            for event in props.get("Events", {}).values():
                p = event.get("Properties", {})
                if event["Type"] == "SQS":
                    queue = p["Queue"]["Fn::GetAtt"][0]
                    spec.sqs_sources.append(
                        {
                            "queue": queue,
                            "batch_size": p.get("BatchSize", 10),
                            "window_s": p.get("MaximumBatchingWindowInSeconds", 0),
                        }
                    )
                elif event["Type"] == "DynamoDB":
                    table = p["Stream"]["Fn::GetAtt"][0]
                    failure = p.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
                    spec.stream_sources.append({"table": table, "batch_size": p.get("BatchSize", 100),
                                                "window_s": p.get("MaximumBatchingWindowInSeconds", 0),
                                                "on_failure": failure["Fn::GetAtt"][0] if failure else None})  # fmt: skip
                elif event["Type"] in ("Schedule", "ScheduleV2"):
                    spec.schedules.append(p["Schedule"] if "Schedule" in p else p["ScheduleExpression"])
            specs[name] = spec
        return specs


def load_raw(path: Path = TEMPLATE) -> dict[str, Any]:
    """template.yaml as written (short tags in their long forms, parameters not substituted)."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def load_template(path: Path = TEMPLATE) -> Template:
    data = load_raw(path)
    parameters = {name: spec.get("Default", "") for name, spec in data.get("Parameters", {}).items()}
    variables = data.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    for key, value in list(variables.items()):
        if isinstance(value, dict) and value.get("Ref") in FROM_ENVIRONMENT:
            del variables[key]  # the user's own environment says it, as it says the secrets
    data = _with_parameters(data, {**parameters, **LOCAL_PARAMETERS})
    function_globals = data.get("Globals", {}).get("Function", {})
    return Template(
        resources=data["Resources"],
        globals_env=function_globals.get("Environment", {}).get("Variables", {}),
        globals_timeout=int(function_globals.get("Timeout", 3)),
    )


def _with_parameters(value: Any, parameters: dict[str, Any]) -> Any:
    """Every ``Ref`` to a stack parameter replaced by its value (resources' Refs stay)."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]]
        return {k: _with_parameters(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_parameters(v, parameters) for v in value]
    return value


_RATE = re.compile(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)")


def rate_seconds(expression: str) -> int:
    found = _RATE.fullmatch(expression.strip())
    if not found:
        raise ValueError(f"only rate(...) schedules run locally, got {expression!r}")
    unit = found.group(2).rstrip("s")
    return int(found.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[unit]
