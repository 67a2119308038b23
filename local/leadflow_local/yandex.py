"""A business deployed on Yandex Cloud (deploy/yandex), as the CLI reaches it: its queues from
`terraform output -json`. boto3 is pointed at Message Queue by the standard
``AWS_ENDPOINT_URL_SQS`` (and signed with a static key in ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``), as the functions are."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


class BadOutputs(Exception):
    """The file is not `terraform output -json` of deploy/yandex."""


def queue_urls(outputs_file: Path) -> Callable[[str], str]:
    """template.yaml's queue logical id (ScoreQueue, ScoreDeadLetterQueue, …) → the Yandex queue's URL."""
    try:
        outputs = json.loads(outputs_file.read_text(encoding="utf-8"))
        queues = _value(outputs["queue_urls"])
        dlqs = _value(outputs["dlq_urls"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadOutputs(
            f"{outputs_file}: not `terraform output -json` of deploy/yandex ({type(exc).__name__}: {exc})"
        ) from exc

    def url(logical_id: str) -> str:
        if logical_id.endswith("DeadLetterQueue"):
            return str(dlqs[logical_id.removesuffix("DeadLetterQueue").lower()])
        return str(queues[logical_id.removesuffix("Queue").lower()])

    return url


def _value(output: dict | str) -> dict:
    value = output.get("value", output) if isinstance(output, dict) else output
    if not isinstance(value, dict):
        raise TypeError("expected a map of queue URLs")
    return value
