"""Load the handlers and invoke them as Lambda would.

Each ``functions/<name>/app.py`` is loaded by path under a unique module name
(``leadflow_fn_<name>``) — five modules called ``app`` would collide otherwise. The local stack's
workers (leadflow_local.workers) and the tests use the same loader. `invoke` runs one handler in
this process with its function's environment, one invocation at a time: the tests and
`leadflow invoke` use it; `leadflow up` runs each invocation in a worker process instead.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_NAMES = ("ingest", "score", "route", "escalate", "remind", "panel")
_lock = threading.RLock()


def load_function(name: str) -> ModuleType:
    module_name = f"leadflow_fn_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    function_name: str
    timeout_s: int = 30
    memory_limit_in_mb: int = 512

    def __post_init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:eu-central-1:123456789012:function:leadflow-{self.function_name}"
        )
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/leadflow-{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def invoke(name: str, event: dict, env: dict[str, str] | None = None, timeout_s: int = 30) -> Any:
    """Run one handler with its environment; the lock makes it one invocation at a time."""
    handler = load_function(name).handler
    with _lock:
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            return handler(event, LambdaContext(name, timeout_s))
        finally:
            # The invocation is over, the process goes on (a test, the CLI): its deadline ends too.
            from leadflow.adapters.channels.toolkit import end_requests_by

            end_requests_by(None)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
