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
from leadflow_local.stack import STATE_DIR, aws_env, quiet_local_runtime, state_file_for


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


def read_state(port: int | None = None, state_dir: Path = STATE_DIR) -> dict[str, Any]:
    """The running local stack's state: the one on `port`, else the only one running here."""
    if port is not None:
        known = state_file_for(state_dir, port)
        if known.exists() and _alive(json.loads(known.read_text(encoding="utf-8"))):
            return dict(json.loads(known.read_text(encoding="utf-8")))
        try:  # a stack started from another folder answers on its port
            with urlopen(f"http://127.0.0.1:{port}/_leadflow/state", timeout=3) as answer:
                return dict(json.loads(answer.read()))
        except (URLError, OSError) as exc:
            raise NotRunning(f"no leadflow stack answers on port {port}") from exc
    running = running_stacks(state_dir)
    if not running:
        raise NotRunning("no running stack: start one with `leadflow up` (or pass --port, or --stack NAME)")
    if len(running) > 1:
        listed = ", ".join(f"{s['port']} ({s['url']})" for s in running)
        raise NotRunning(f"several stacks run here, on ports {listed}: say which with --port N")
    return running[0]


def running_stacks(state_dir: Path = STATE_DIR) -> list[dict[str, Any]]:
    """The states of the stacks started from this folder that still run (stale files are ignored)."""
    found = []
    for path in sorted(state_dir.glob("local-*.json")):
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if _alive(state):
            found.append(state)
    return sorted(found, key=lambda state: int(state.get("port") or 0))


def _alive(state: dict[str, Any]) -> bool:
    """The process that wrote a state file still runs (a killed stack leaves its file behind)."""
    try:
        os.kill(int(state["pid"]), 0)
    except (KeyError, TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


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
