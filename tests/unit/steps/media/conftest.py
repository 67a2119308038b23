"""The media tests' stack: ingest, score and route on moto (the media bucket from template.yaml),
the Bot API a FakeTelegram, WhatsApp's Graph API a FakeGraphApi, Instagram's and VK's CDN a
loopback server, the transcriber an OpenAI-compatible fake — each speaking its documented wire."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fakes.http import FakeServer, Request, Response
from tests.fakes.meta_server import FakeGraphApi
from tests.fakes.openai_server import FakeOpenAI, transcription
from tests.fakes.telegram_server import FakeTelegram
from tests.support.workspace import ANNA, KATYA, MARINA, Workspace, start_workspace

WA_NUMBER_ID = "106540352242922"


class Cdn:
    """Files behind plain links, as Instagram's and VK's CDNs serve them (no token)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.delays: dict[str, float] = {}  # name → seconds before the CDN answers
        self.server = FakeServer(self.route)

    def add(self, name: str, data: bytes, mime_type: str) -> str:
        self.files[name] = (data, mime_type)
        return f"{self.server.url}/cdn/{name}?signature=AbzX"

    def route(self, request: Request) -> Response:
        found = self.files.get(request.path.removeprefix("/cdn/"))
        if found is None:
            return Response(404, b"")
        name = request.path.removeprefix("/cdn/")
        return Response(200, found[0], headers={"Content-Type": found[1]}, delay_s=self.delays.get(name, 0.0))


@dataclass
class MediaStack:
    ws: Workspace
    tg: FakeTelegram
    graph: FakeGraphApi
    cdn: Cdn
    ai: FakeOpenAI
    ai_url: str


@pytest.fixture
def media(aws, monkeypatch) -> Iterator[MediaStack]:
    ai = FakeOpenAI(transcripts=(transcription("Хочу на маникюр завтра в 15:00"),))
    cdn = Cdn()
    with FakeTelegram() as tg, FakeGraphApi() as graph, cdn.server, ai.serve() as ai_server:
        monkeypatch.setenv("WHATSAPP_TOKEN", graph.token)
        monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", WA_NUMBER_ID)
        monkeypatch.setenv("META_GRAPH_BASE", graph.base_url)
        ws = start_workspace(aws, monkeypatch, tg)
        for staff_id, chat in (("anna", ANNA), ("katya", KATYA), ("marina", MARINA)):
            ws.connect(staff_id, chat)
        yield MediaStack(ws, tg, graph, cdn, ai, f"{ai_server.url}/v1")
