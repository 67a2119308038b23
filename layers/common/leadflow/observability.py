"""Logger and Metrics, created once for all functions (Powertools reads POWERTOOLS_* env)."""

from __future__ import annotations

import re

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="leadflow")
metrics = Metrics(namespace="leadflow")

_PHONE = re.compile(r"\+?\d[\d\s()\-]{8,}\d")


def mask(text: str | None) -> str:
    """For error messages that might echo input: digits of anything phone-like are hidden."""
    if not text:
        return ""
    return _PHONE.sub(lambda m: m.group(0)[:2] + "…" + m.group(0)[-2:], text)
