"""Stand-ins the demo starts beside the stack, on 127.0.0.1: a CDN serving the files its clients
send (Instagram and VK hand out plain links to them) and an OpenAI-compatible transcriber
(``POST /v1/audio/transcriptions``, multipart ``file`` + ``model`` → ``{"text": …}``; a wrong key →
401 ``invalid_api_key``) that knows the words of the demo's own recordings."""

from __future__ import annotations

import email.policy
import hashlib
import json
import secrets
import threading
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StandIns:
    def __init__(self) -> None:
        self.api_key = "sk-demo-" + secrets.token_urlsafe(12)
        self.files: dict[str, tuple[bytes, str]] = {}
        self.transcripts: dict[str, str] = {}  # sha256 of a recording → its words
        self.transcribed = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                found = outer.files.get(self.path.split("?", 1)[0].removeprefix("/cdn/"))
                if found is None:
                    self._answer(404, b"", "text/plain")
                else:
                    self._answer(200, *found)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = outer.transcribe(self.path, dict(self.headers.items()), body)
                self._answer(status, json.dumps(answer, ensure_ascii=False).encode(), "application/json")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="standins")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_file(self, name: str, data: bytes, content_type: str) -> str:
        self.files[name] = (data, content_type)
        return f"{self.url}/cdn/{name}?sig=demo"

    def add_recording(self, name: str, data: bytes, content_type: str, words: str) -> str:
        self.transcripts[hashlib.sha256(data).hexdigest()] = words
        return self.add_file(name, data, content_type)

    def transcribe(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        if path != "/v1/audio/transcriptions":
            return 404, _error("Invalid URL", "invalid_request_error")
        given = {k.lower(): v for k, v in headers.items()}
        if given.get("authorization") != f"Bearer {self.api_key}":
            return 401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        message = BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + given.get("content-type", "").encode() + b"\r\n\r\n" + body
        )
        parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
        if "file" not in parts or "model" not in parts:
            return 400, _error("Missing required parameter: 'file' or 'model'.", "invalid_request_error")
        payload = parts["file"].get_payload(decode=True)
        audio = payload if isinstance(payload, bytes) else b""
        words = self.transcripts.get(hashlib.sha256(audio).hexdigest())
        if words is None:
            return 400, _error("Audio file might be corrupted or unsupported", "invalid_request_error")
        self.transcribed += 1
        return 200, {"text": words}

    def __enter__(self) -> StandIns:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _error(message: str, type_: str, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}
