"""How CLI commands reach a stack: a running local one (its state file, or its gateway's port), or a
deployed one (`--stack NAME`, leadflow_local.deployed)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import urlopen

from leadflow_local.deployed import CannotReach
from leadflow_local.stack import STATE_FILE, aws_env, quiet_local_runtime


class NotRunning(CannotReach):
    pass


@dataclass(frozen=True)
class Target:
    """The stack a command acts on, once this process's runtime points at it."""

    label: str  # "local stack http://127.0.0.1:3000" / "stack salon-prod (eu-central-1)"
    webhook_base: str | None  # …/webhooks, as the channels are told to call it
    queue_url: Callable[[str], str]  # a queue's logical id in template.yaml → its URL
    stack: str | None = None  # the deployed stack's name (--stack)

    @property
    def deployed(self) -> bool:
        return self.stack is not None


def read_state(port: int | None = None, state_file: Path = STATE_FILE) -> dict[str, Any]:
    if port is not None:
        try:
            with urlopen(f"http://127.0.0.1:{port}/_leadflow/state", timeout=3) as answer:
                return json.loads(answer.read())
        except (URLError, OSError) as exc:
            raise NotRunning(f"no leadflow stack answers on port {port}") from exc
    if not state_file.exists():
        raise NotRunning("no running stack: start one with `leadflow up` (or pass --port, or --stack NAME)")
    return json.loads(state_file.read_text(encoding="utf-8"))


def connect(state: dict[str, Any], function: str = "route") -> None:
    """Point this process's leadflow runtime at the running stack's emulator and tables."""
    from leadflow import wiring

    os.environ.update(aws_env(state["aws_endpoint"]))
    os.environ.update(state["env"][function])
    for key in ("LEADFLOW_CLOCK_SPEED", "LEADFLOW_CLOCK_ORIGIN", "LEADFLOW_CLOCK_START"):
        os.environ.pop(key, None)
    if state.get("clock_origin"):  # read the same (possibly fast) clock as the stack
        os.environ["LEADFLOW_CLOCK_SPEED"] = str(state.get("speed", 1))
        os.environ["LEADFLOW_CLOCK_ORIGIN"] = str(state["clock_origin"])
        if state.get("clock_start"):
            os.environ["LEADFLOW_CLOCK_START"] = state["clock_start"]
    os.environ.update(state.get("secrets", {}))
    quiet_local_runtime()
    wiring.reset()


def local_queue_url(logical_id: str) -> str:
    """Locally a queue is named by its logical id (the emulator the environment points at)."""
    import boto3

    return str(boto3.client("sqs").get_queue_url(QueueName=logical_id)["QueueUrl"])


def reach(stack: str | None = None, port: int | None = None, function: str = "route") -> Target:
    """Connect to the deployed stack ``stack`` when given, else to the running local stack."""
    if stack:
        from leadflow_local import deployed

        found = deployed.describe(stack)
        deployed.connect(found)
        return Target(f"stack {found.name} ({found.region})", found.webhook_base, found.queue_url, found.name)
    state = read_state(port)
    connect(state, function)
    return Target(f"local stack {state['url']}", f"{state['url']}/webhooks", local_queue_url)
