from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from leadflow.adapters import llm as llm_module
from leadflow.adapters.llm import make_client, qualify_with_llm
from leadflow.domain.models import Intent, Qualification, Temperature
from leadflow.settings import Settings
from tests.fakes.openai_server import FakeOpenAI, labels, server_error
from tests.support.llm import RECEIVED, SERVICES, TZ


class RecordingOffline:
    """Stands in for leadflow.domain.qualify.offline (another module's job) and records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, text, received_at, services, *, tz, channel=""):
        assert tz == TZ and list(services) == SERVICES
        self.calls.append((text, channel))
        return Qualification(intent=Intent.question, temperature=Temperature.cold, engine="whatever")


@pytest.fixture(autouse=True)
def _fresh_clients():
    llm_module._shared_client.cache_clear()
    yield
    llm_module._shared_client.cache_clear()


def test_import_does_not_load_openai():
    code = "import sys, leadflow.adapters.llm; print('openai' in sys.modules, 'httpx2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_make_client_points_at_the_endpoint_without_sdk_retries():
    client = make_client("sk-test", "http://127.0.0.1:9/v1", 1.5)
    assert client.max_retries == 0
    assert client.timeout == 1.5
    assert str(client.base_url).rstrip("/") == "http://127.0.0.1:9/v1"


def test_qualify_with_llm_uses_the_configured_endpoint(monkeypatch):
    fake = FakeOpenAI(labels(intent="booking", service="massage", preferred_date="2026-03-14"))
    offline = RecordingOffline()
    with fake.serve() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("OPENAI_MODEL", "yandexgpt-lite")
        result = qualify_with_llm(
            "массаж в субботу", RECEIVED, SERVICES, tz=TZ, channel="vk", fallback=offline
        )

    assert (result.engine, result.service, result.preferred_date) == ("llm", "massage", date(2026, 3, 14))
    assert result.temperature == "hot"
    assert fake.bodies[0]["model"] == "yandexgpt-lite"
    assert offline.calls == []


def test_qualify_with_llm_falls_back_to_offline_when_the_llm_fails(monkeypatch):
    fake = FakeOpenAI(server_error())
    offline = RecordingOffline()
    with fake.serve() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        settings = Settings(openai_base_url=f"{server.url}/v1", openai_model="gpt-4o-mini")
        result = qualify_with_llm(
            "сколько стоит?", RECEIVED, SERVICES, tz=TZ, settings=settings, fallback=offline
        )

    assert result.engine == "offline"
    assert result.intent == "question"
    assert offline.calls == [("сколько стоит?", "")]
    assert len(server.requests) == 1


def test_qualify_with_llm_without_key_or_endpoint_goes_offline_without_calling_anything():
    offline = RecordingOffline()
    result = qualify_with_llm("привет", RECEIVED, SERVICES, tz=TZ, settings=Settings(), fallback=offline)

    assert result.engine == "offline"
    assert offline.calls == [("привет", "")]


def test_local_endpoint_without_key_is_still_used():
    # vLLM / Ollama take any bearer token; the fake here expects the placeholder
    fake = FakeOpenAI(labels(intent="question"), api_key="unused")
    with fake.serve() as server:
        result = qualify_with_llm(
            "вопрос", RECEIVED, SERVICES, tz=TZ, settings=Settings(openai_base_url=f"{server.url}/v1"),
            fallback=RecordingOffline(),
        )  # fmt: skip
    assert result.engine == "llm"


def test_default_fallback_is_the_offline_engine(monkeypatch):
    pytest.importorskip("leadflow.domain.qualify.offline")
    fake = FakeOpenAI(server_error())
    with fake.serve() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        result = qualify_with_llm(
            "Сколько стоит массаж спины?", RECEIVED, SERVICES, tz=TZ,
            settings=Settings(openai_base_url=f"{server.url}/v1"),
        )  # fmt: skip
    assert result.engine == "offline"
    assert len(server.requests) == 1
