from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from leadflow.adapters.llm import LlmQualifier, make_client
from tests.fakes.http import FakeServer
from tests.fakes.openai_server import Answer, FakeOpenAI, labels
from tests.support.llm import SERVICES, TZ


@pytest.fixture(scope="module")
def openai_endpoint() -> Iterator[tuple[FakeOpenAI, FakeServer]]:
    fake = FakeOpenAI(labels())
    with fake.serve() as server:
        yield fake, server


@pytest.fixture
def llm(
    openai_endpoint: tuple[FakeOpenAI, FakeServer],
) -> Callable[..., AbstractContextManager[tuple[LlmQualifier, FakeOpenAI, FakeServer]]]:
    """`with llm(answer, ...) as (engine, fake, server)`: an engine on the real openai client
    pointed at the fake endpoint, which plays the scripted answers."""
    fake, server = openai_endpoint

    @contextmanager
    def start(
        *script: Answer, budget_s: float = 2.5, rejects_response_format: bool = False
    ) -> Iterator[tuple[LlmQualifier, FakeOpenAI, FakeServer]]:
        fake.reset(*script, rejects_response_format=rejects_response_format)
        server.requests.clear()
        client = make_client("sk-test", f"{server.url}/v1", timeout_s=budget_s)
        try:
            yield LlmQualifier(client, "gpt-4o-mini", SERVICES, TZ, budget_s=budget_s), fake, server
        finally:
            client.close()

    return start
