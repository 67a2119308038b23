"""How CLI commands reach a running local stack: its state file (or its gateway's port)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import urlopen

from leadflow_local.stack import STATE_FILE, aws_env, quiet_local_runtime


class NotRunning(RuntimeError):
    pass


def read_state(port: int | None = None, state_file: Path = STATE_FILE) -> dict[str, Any]:
    if port is not None:
        try:
            with urlopen(f"http://127.0.0.1:{port}/_leadflow/state", timeout=3) as answer:
                return json.loads(answer.read())
        except (URLError, OSError) as exc:
            raise NotRunning(f"no leadflow stack answers on port {port}") from exc
    if not state_file.exists():
        raise NotRunning("no running stack: start one with `leadflow up` (or pass --port)")
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
