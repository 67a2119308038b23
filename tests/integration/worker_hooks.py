"""Faults the integration tests plant in the local stack's workers.

`LocalStack(worker_setup="tests.integration.worker_hooks:NAME")` makes every worker call
NAME(function) before it serves (leadflow_local.workers). Workers are separate processes, so what
a fault counts is counted in a file (its path in an environment variable the test sets), under
an fcntl lock.

`python -m tests.integration.worker_hooks NAME up --port N` runs `leadflow up` with NAME planted.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path
from typing import Any

SCORE_CALLS = "LEADFLOW_TEST_SCORE_CALLS"
SLOW_CALLS = "LEADFLOW_TEST_SLOW_CALLS"
CRASH_CALLS = "LEADFLOW_TEST_CRASH_CALLS"
REQUEUES = "LEADFLOW_TEST_REQUEUES"


def bump(path: str | Path) -> int:
    """Add one to the count in `path` (shared by every worker); the new count."""
    with open(path, "a+", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        count = int(file.read() or 0) + 1
        file.seek(0)
        file.truncate()
        file.write(str(count))
    return count


def count(path: str | Path) -> int:
    try:
        return int(Path(path).read_text(encoding="utf-8") or 0)
    except FileNotFoundError:
        return 0


def _wrap_score(fault: Any) -> None:
    from leadflow.steps import score

    real = score.ScoreStep.handle

    def handle(self: Any, message: Any) -> Any:
        fault()
        return real(self, message)

    score.ScoreStep.handle = handle  # type: ignore[method-assign]


def flaky_score(function: str) -> None:
    """test_faults: score's 3rd and 4th messages (counted over all its workers) raise mid-batch."""
    if function == "score":

        def fault() -> None:
            if bump(os.environ[SCORE_CALLS]) in (3, 4):
                raise RuntimeError("injected crash mid-batch")

        _wrap_score(fault)


def flaky_score_counting_requeues(function: str) -> None:
    """flaky_score, and every record a Yandex-flavoured frame sends back to its queue is counted."""
    flaky_score(function)
    from leadflow.adapters.platform import yandex

    real = yandex.settle

    def settle(*args: Any, **kwargs: Any) -> dict:
        answer = real(*args, **kwargs)
        for _ in range(answer["requeued"]):
            bump(os.environ[REQUEUES])
        return answer

    yandex.settle = settle  # type: ignore[assignment]


def slow_first_score(function: str) -> None:
    """The first message score handles hangs far past any Timeout; the rest are handled normally."""
    if function == "score":

        def fault() -> None:
            if bump(os.environ[SLOW_CALLS]) == 1:
                time.sleep(600)

        _wrap_score(fault)


def crash_first_ingest(function: str) -> None:
    """The first webhook ingest takes kills its worker on the spot, as a segfault or OOM would."""
    if function == "ingest":

        def fault() -> None:
            if bump(os.environ[CRASH_CALLS]) == 1:
                os._exit(1)

        _wrap_handler("ingest", fault)


def _wrap_handler(function: str, before: Any) -> None:
    from leadflow_local.functions import load_function

    module = load_function(function)
    real = module.handler

    def handler(event: dict, context: Any) -> Any:
        before()
        return real(event, context)

    module.handler = handler


if __name__ == "__main__":
    from leadflow_local import cli, stack

    class PlantedStack(stack.LocalStack):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, worker_setup="tests.integration.worker_hooks:" + sys.argv[1], **kwargs)

    stack.LocalStack = PlantedStack  # type: ignore[misc]
    sys.exit(cli.main(sys.argv[2:]))
