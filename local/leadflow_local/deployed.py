"""`--stack NAME`: the CLI on a deployed stack instead of the local one.

The CloudFormation stack says where everything is: its outputs name every table
(``<LogicalId>Name``) and queue (``<LogicalId>Url``), its parameters hold the plain settings, and
its secrets are read from SSM under its ``SecretsPrefix`` — as the functions read them. Region and
credentials come from the usual AWS environment (AWS_PROFILE, AWS_REGION, …).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from leadflow_local.template import load_raw


class CannotReach(RuntimeError):
    """The stack a command should act on cannot be reached; the message says what to do."""


@dataclass(frozen=True)
class DeployedStack:
    name: str
    region: str
    outputs: dict[str, str]
    parameters: dict[str, str]

    @property
    def webhook_base(self) -> str | None:
        return self.outputs.get("WebhookBaseUrl")

    def queue_url(self, logical_id: str) -> str:
        return self._output(f"{logical_id}Url")

    def environment(self) -> dict[str, str]:
        """The variables every function of the stack gets (template Globals), as the stack set them;
        an empty value is an unset setting."""
        env = {}
        for variable, (kind, key) in environment_sources().items():
            if kind == "parameter":
                value = self.parameters.get(key)
                if value is None:  # a stack deployed before the parameter existed
                    value = self.outputs.get(key, "")
                env[variable] = value
            else:
                env[variable] = self._output(key)
        for variable, key in FUNCTION_OUTPUTS.items():
            env[variable] = self.outputs.get(key, "")  # a stack deployed before the output existed: unset
        return env

    def _output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise CannotReach(
                f"stack {self.name!r} has no output {key}: it was deployed from an older template.yaml — "
                "deploy it again (sam build && sam deploy) and retry"
            ) from None


# Variables only some functions get (not in Globals) that a CLI command needs too: the output
# that names their resource. `leadflow forget` deletes a person's files from the media bucket.
FUNCTION_OUTPUTS = {"MEDIA_BUCKET": "MediaBucketName"}


def environment_sources() -> dict[str, tuple[str, str]]:
    """Each variable of the functions' Globals → ("parameter", name) or ("output", key): where a
    deployed stack keeps its value. Literal values (Powertools settings) are the CLI's own business."""
    raw = load_raw()
    parameters = set(raw.get("Parameters", {}))
    variables = raw["Globals"]["Function"]["Environment"]["Variables"]
    sources: dict[str, tuple[str, str]] = {}
    for variable, value in variables.items():
        if not isinstance(value, dict):
            continue
        if "Ref" in value:
            ref = value["Ref"]
            sources[variable] = ("parameter", ref) if ref in parameters else ("output", f"{ref}Name")
        elif "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "QueueUrl":
            sources[variable] = ("output", f"{value['Fn::GetAtt'][0]}Url")
    return sources


# A stack whose first deploy failed (rolled back) or that is being deleted.
UNUSABLE = frozenset({"CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED",
                      "DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETE_COMPLETE"})  # fmt: skip


def describe(name: str, cloudformation: Any = None) -> DeployedStack:
    """The stack's outputs and parameters (``cloudformation.describe_stacks``)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        cfn = cloudformation or boto3.client("cloudformation")
        region = cfn.meta.region_name
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except NoRegionError:
        raise CannotReach("no AWS region: set AWS_REGION (or a region in your AWS_PROFILE)") from None
    except NoCredentialsError:
        raise CannotReach(
            "no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if "does not exist" in str(error.get("Message", "")):
            raise CannotReach(
                f"no CloudFormation stack {name!r} in {region} (AWS_REGION / AWS_PROFILE choose the region)"
            ) from None
        raise CannotReach(f"cannot read stack {name!r}: {error.get('Code', 'error')}") from None
    except BotoCoreError as exc:
        raise CannotReach(f"cannot reach CloudFormation: {type(exc).__name__}") from None
    stack = stacks[0]
    status = stack.get("StackStatus", "")
    if status in UNUSABLE:
        raise CannotReach(f"stack {name!r} is {status}: it has no tables to work on")
    return DeployedStack(
        name=name,
        region=region,
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
    )


CLOCK_VARIABLES = ("LEADFLOW_CLOCK_SPEED", "LEADFLOW_CLOCK_ORIGIN", "LEADFLOW_CLOCK_START")


def connect(stack: DeployedStack) -> None:
    """Point this process's leadflow runtime at the deployed stack's tables, queues and secrets."""
    from leadflow import wiring
    from leadflow.settings import SECRET_NAMES
    from leadflow_local.stack import quiet_local_runtime

    environment = stack.environment()
    # The stack's secrets are the ones in SSM under its prefix, never a token this shell holds for
    # a local stack; the real clock, never a local stack's fast one.
    for name in (*SECRET_NAMES, *CLOCK_VARIABLES):
        os.environ.pop(name, None)
    for variable, value in environment.items():
        if value:
            os.environ[variable] = value
        else:
            os.environ.pop(variable, None)
    quiet_local_runtime()
    wiring.reset()
