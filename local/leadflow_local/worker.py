"""Inside one worker process: take the function's environment, load its handler, answer
invocations until the stack closes the pipe (the stack's side is leadflow_local.workers)."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

# Set by the local stack's yandex flavour: a failed record is sent back after this many seconds
# (30 s, doubling, in the cloud), as the aws flavour's pollers shorten the visibility timeout.
LOCAL_RETRY_DELAY_ENV = "LEADFLOW_LOCAL_RETRY_DELAY_S"


def serve(conn: Connection, function: str, env: dict[str, str], timeout_s: float, setup: str | None) -> None:
    """A worker's life: take the function's environment, load its handler, answer until the pipe closes."""
    from leadflow_local.functions import LambdaContext, load_function

    # Ctrl-C reaches the whole process group; the stack decides when workers go.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import faulthandler

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    os.environ.clear()
    os.environ.update(env)
    if delay := env.get(LOCAL_RETRY_DELAY_ENV):  # the yandex flavour: retries in seconds, not minutes
        from leadflow.adapters.platform import yandex

        yandex.FIRST_RETRY_DELAY_S = int(delay)
    _fresh_runtime()
    report = _run_setup(setup, function)  # first: it may wrap the handler
    handler = load_function(function).handler
    _warm_up()
    if report is not None:
        report()  # what warming up did is no invocation's
    conn.send_bytes(b'{"ready": true}')
    while True:
        try:
            request = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the stack stopped (or died): a worker never outlives it
        for name, value in request["clock"].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        started, t0 = time.time(), time.perf_counter()
        context = LambdaContext(function, int(timeout_s))
        try:
            answer: dict[str, Any] = {"result": handler(request["event"], context)}
        except Exception as exc:
            answer = {"error": {"type": type(exc).__name__, "message": str(exc)}}
        answer.update(started=started, duration_ms=(time.perf_counter() - t0) * 1000)
        if report is not None:
            answer["extras"] = report()
        try:
            data = json.dumps(answer).encode()
        except (TypeError, ValueError) as exc:  # as Lambda: a result must be JSON
            data = json.dumps({"error": {"type": "Runtime.MarshalError", "message": str(exc)},
                               "started": started, "duration_ms": answer["duration_ms"]}).encode()  # fmt: skip
        conn.send_bytes(data)


def _fresh_runtime() -> None:
    """Whatever the zygote built before this worker's environment existed is dropped; logs and
    warnings as quiet as the stack's own (stack.quiet_local_runtime)."""
    import warnings

    from leadflow import wiring
    from leadflow.observability import logger

    wiring.reset()
    logger.setLevel(os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"))
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def _warm_up() -> None:
    """Build the clients and read the business config before the first event arrives, as a warm
    container has them: a worker's first invocation then costs what every other one does.
    Best effort: an invocation builds whatever is still missing."""
    from leadflow import wiring
    from leadflow.adapters.queues import sqs_client

    with contextlib.suppress(Exception):
        wiring.business()
        sqs_client()


def _run_setup(setup: str | None, function: str) -> Callable[[], dict] | None:
    if not setup:
        return None
    module_name, _, attribute = setup.partition(":")
    result = getattr(importlib.import_module(module_name), attribute)(function)
    return result if callable(result) else None
