"""Test-wide settings: no real AWS credentials, no real endpoints, a clean settings cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leadflow import clock
from leadflow.settings import SECRET_NAMES, reset_caches

# Processes the tests start (the local stack's emulator and workers, the CLI) import this
# checkout's code too, as pytest's `pythonpath` makes this process do.
_ROOT = Path(__file__).resolve().parents[1]
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(_ROOT / "layers" / "common"), str(_ROOT / "local"), str(_ROOT)]
    + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch):
    for name in SECRET_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "leadflow-test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "leadflow")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for leftover in ("AWS_ENDPOINT_URL", "LEADFLOW_CLOCK_ORIGIN", "DLQ_URL", "VK_GROUP_ID", "CALL_TIMEZONE"):
        monkeypatch.delenv(leftover, raising=False)  # never a stopped emulator from an earlier test
    monkeypatch.delenv("LEADFLOW_CLOCK_SPEED", raising=False)
    monkeypatch.delenv("LEADFLOW_CLOCK_START", raising=False)
    reset_caches()
    yield
    clock.unfreeze()
    reset_caches()


@pytest.fixture
def aws():
    """moto with template.yaml's tables and queues, the example business config pushed."""
    from tests.support.aws import aws_stack

    with aws_stack() as stack:
        yield stack
