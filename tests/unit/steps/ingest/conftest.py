"""Ingest tests: moto from template.yaml, every channel's secret set, the logger's output kept."""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from leadflow import wiring
from leadflow.observability import logger
from leadflow.settings import reset_caches
from tests.support.webhooks import SECRETS, sms_provider_of


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every channel's secret; SNS signing certificates come from the tests' own (support/sns.py)."""
    from leadflow.adapters.channels import sns
    from tests.support.sns import Certificates

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sns, "_verifier", sns.SnsVerifier(Certificates()))
    reset_caches()
    return SECRETS


@pytest.fixture
def configure_for(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """What a sample needs besides the secrets: SMS_PROVIDER for an events/sms one."""

    def configure(path: Path) -> None:
        provider = sms_provider_of(path)
        if provider:
            monkeypatch.setenv("SMS_PROVIDER", provider)
            reset_caches()

    return configure


@pytest.fixture
def env(aws, secrets):
    """The moto stack with every channel configured."""
    return aws


class LogWatch:
    """The Powertools logger's JSON lines, and the personal data that must never be in them."""

    def __init__(self, stream: io.StringIO):
        self.stream = stream
        self.watched: set[str] = set()

    def watch(self, *values: str | None) -> None:
        for value in values:
            if value and len(value.strip()) >= 4:
                self.watched.add(value.strip())
                digits = re.sub(r"\D", "", value)
                if len(digits) >= 10 and len(digits) == len(re.sub(r"[\s()+\-]", "", value)):
                    self.watched.add(digits[-10:])  # the number however it is spelt

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def leaks(self) -> list[str]:
        text = self.text
        return sorted(v for v in self.watched if v in text)


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    """The logger's stdout stream, swapped for a buffer: capsys cannot see it, because the
    handler holds the stdout it found at import. Scanned after the test for what was watched."""
    handler = logger.registered_handler
    buffer = io.StringIO()
    saved_stream, saved_level = handler.setStream(buffer), logger.log_level
    logger.setLevel("INFO")  # the local stack sets WARNING for the process; logs are what we test
    watch = LogWatch(buffer)
    try:
        yield watch
    finally:
        handler.setStream(saved_stream)
        logger.setLevel(saved_level)
    assert watch.leaks() == [], f"personal data in the logs: {watch.leaks()}"


class AwsCalls:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, event_name: str, **_: object) -> None:
        _, service, operation = event_name.split(".", 2)
        self.calls[f"{service}.{operation}"] += 1

    def reset(self) -> None:
        self.calls.clear()

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@pytest.fixture
def aws_calls(env) -> Iterator[AwsCalls]:
    """Every AWS request any client makes (clients copy the session's hooks when built, so the
    runtime's clients are rebuilt after the hook is registered)."""
    session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
    assert session is not None
    counter = AwsCalls()
    session.events.register("before-call", counter, unique_id="ingest-test-calls")
    wiring.reset()
    try:
        yield counter
    finally:
        session.events.unregister("before-call", unique_id="ingest-test-calls")
        wiring.reset()


@pytest.fixture
def queue_sends(env) -> Iterator[Counter[str]]:
    """SendMessage calls by the name of the queue they went to (ScoreQueue, RouteQueue, …), from
    every client built after the hook is registered — ingest's, score's and route's alike."""
    session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
    assert session is not None
    sends: Counter[str] = Counter()

    def count(params: dict, **_: object) -> None:
        sends[str(params["QueueUrl"]).rsplit("/", 1)[-1]] += 1

    session.events.register("provide-client-params.sqs.SendMessage", count, unique_id="ingest-test-sends")
    wiring.reset()
    try:
        yield sends
    finally:
        session.events.unregister("provide-client-params.sqs.SendMessage", unique_id="ingest-test-sends")
        wiring.reset()
