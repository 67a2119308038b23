"""Logger and Metrics, created once for all functions (Powertools reads POWERTOOLS_* env)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="leadflow")
metrics = Metrics(namespace="leadflow")
