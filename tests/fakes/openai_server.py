"""A fake OpenAI-compatible endpoint: POST /v1/chat/completions, GET /v1/models and
POST /v1/audio/transcriptions on top of tests/fakes/http.py.

Transcriptions take multipart/form-data (``file`` with a name whose extension names the format,
``model``, optional ``language``, ``response_format``) and answer ``{"text": "..."}``; a file of
an unknown format gets 400 ``Invalid file format. Supported formats: [...]``, a body over
``max_audio_bytes`` (25 MiB) 413 ``Maximum content size limit (26214400) exceeded (N bytes read)``,
a wrong key 401 ``invalid_api_key``, and scripted answers can be 429 ``rate_limit_exceeded`` or
``insufficient_quota``.

It speaks the documented wire format: the `chat.completion` object (id, object, created,
model, choices[].message{role, content, refusal}, finish_reason, usage), the error body
`{"error": {"message", "type", "param", "code"}}` with 400/401/404/429/500, `retry-after`
and `x-ratelimit-*` headers on 429. A test scripts what the "model" answers, one answer per
request (the last answer repeats), or hands in a callable that sees the request body.

    fake = FakeOpenAI(labels(intent="booking", service="massage"))
    with fake.serve() as server:
        client = make_client("sk-test", server.url + "/v1", 2.0)
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.http import FakeServer, Request, Response

Answer = Response | Callable[[dict[str, Any]], Response]

DEFAULT_MODEL = "gpt-4o-mini"
_ids = itertools.count(1)


def error(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Response(status=status, body=body, headers=headers or {})


def chat_completion(
    content: str | None,
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
    prompt_tokens: int = 812,
    completion_tokens: int | None = None,
    model: str = DEFAULT_MODEL,
    delay_s: float = 0.0,
) -> Response:
    """A 200 answer; `completion_tokens` defaults to a rough count of the content."""
    if completion_tokens is None:
        completion_tokens = max(1, len(content or refusal or "") // 3)
    body = {
        "id": f"chatcmpl-fake{next(_ids):06d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return Response(status=200, body=body, headers={"x-request-id": "req_fake"}, delay_s=delay_s)


def labels(
    intent: str = "booking",
    service: str | None = None,
    preferred_date: str | None = None,
    preferred_time: str | None = None,
    name: str | None = None,
    phone: str | None = None,
    urgent: bool = False,
    **extra: Any,
) -> Response:
    """A structured-output answer: the JSON object the strict schema asks for (plus `extra` keys)."""
    data = {
        "intent": intent,
        "service": service,
        "preferred_date": preferred_date,
        "preferred_time": preferred_time,
        "name": name,
        "phone": phone,
        "urgent": urgent,
        **extra,
    }
    return chat_completion(json.dumps(data, ensure_ascii=False))


AUDIO_FORMATS = ["flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"]
MAX_AUDIO_BYTES = 26_214_400


def transcription(text: str, *, delay_s: float = 0.0) -> Response:
    return Response(status=200, body={"text": text}, headers={"x-request-id": "req_fake"}, delay_s=delay_s)


def too_large(bytes_read: int, limit: int = MAX_AUDIO_BYTES) -> Response:
    return error(
        413, f"Maximum content size limit ({limit}) exceeded ({bytes_read} bytes read)", "server_error"
    )


def quota_exceeded() -> Response:
    return error(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        code="insufficient_quota",
    )


def fenced(response: Response) -> Response:
    """The same answer as a model that ignores response_format writes it: inside ```json fences."""
    body = json.loads(json.dumps(response.body))
    message = body["choices"][0]["message"]
    message["content"] = f"```json\n{message['content']}\n```"
    return dataclasses.replace(response, body=body)


def truncated(response: Response, keep_chars: int = 40) -> Response:
    """The answer cut by max_tokens: partial JSON and finish_reason "length"."""
    body = json.loads(json.dumps(response.body))
    choice = body["choices"][0]
    choice["message"]["content"] = choice["message"]["content"][:keep_chars]
    choice["finish_reason"] = "length"
    return dataclasses.replace(response, body=body)


def slow(response: Response, delay_s: float) -> Response:
    return dataclasses.replace(response, delay_s=delay_s)


def refused(text: str = "I'm sorry, I can't assist with that request.") -> Response:
    return chat_completion(None, refusal=text)


def rate_limited(retry_after_s: int = 20, model: str = DEFAULT_MODEL) -> Response:
    return error(
        429,
        f"Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
        f"Limit 3, Used 3, Requested 1. Please try again in {retry_after_s}s.",
        "requests",
        code="rate_limit_exceeded",
        headers={
            "retry-after": str(retry_after_s),
            "x-ratelimit-limit-requests": "3",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{retry_after_s}s",
        },
    )


def server_error() -> Response:
    return error(
        500,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
    )


class FakeOpenAI:
    """The route for FakeServer. `rejects_response_format` plays an endpoint that answers 400 to
    a json_schema response_format (older vLLM / Ollama / gateway builds)."""

    def __init__(
        self, *script: Answer, api_key: str = "sk-test", rejects_response_format: bool = False,
        transcripts: tuple[Answer, ...] = (), max_audio_bytes: int = MAX_AUDIO_BYTES,
    ):  # fmt: skip
        self.reset(
            *script, api_key=api_key, rejects_response_format=rejects_response_format,
            transcripts=transcripts, max_audio_bytes=max_audio_bytes,
        )  # fmt: skip

    def reset(
        self, *script: Answer, api_key: str = "sk-test", rejects_response_format: bool = False,
        transcripts: tuple[Answer, ...] = (), max_audio_bytes: int = MAX_AUDIO_BYTES,
    ) -> None:  # fmt: skip
        """A new script and a clean record: one server can serve many tests (starting one costs ~0.5 s)."""
        if not script and not transcripts:
            raise ValueError("FakeOpenAI needs at least one scripted answer")
        self.script = list(script)
        self.transcripts = list(transcripts)
        self.max_audio_bytes = max_audio_bytes
        self.api_key = api_key
        self.rejects_response_format = rejects_response_format
        self.models = [DEFAULT_MODEL, "whisper-1"]  # what GET /v1/models lists
        self.bodies: list[dict[str, Any]] = []  # every well-formed request body, in order
        self.audio: list[dict[str, Any]] = []  # every well-formed transcription request, in order
        self._served = 0
        self._transcribed = 0

    def serve(self) -> FakeServer:
        return FakeServer(self.route)

    def route(self, request: Request) -> Response:
        if request.path == "/v1/audio/transcriptions":
            return self._transcription(request)
        if request.path == "/v1/models" and request.method == "GET":
            return self._unauthorized() if self._wrong_key(request) else self._list_models()
        if request.path != "/v1/chat/completions":
            return error(404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error")
        if request.method != "POST":
            return error(405, f"Method {request.method} not allowed", "invalid_request_error")
        if self._wrong_key(request):
            return self._unauthorized()
        try:
            body = request.json()
        except ValueError:
            return error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        problem = self._invalid(body)
        if problem:
            return problem
        if not self.script:
            return server_error()
        self.bodies.append(body)
        answer = self.script[min(self._served, len(self.script) - 1)]
        self._served += 1
        return answer(body) if callable(answer) else answer

    def _transcription(self, request: Request) -> Response:
        if request.method != "POST":
            return error(405, f"Method {request.method} not allowed", "invalid_request_error")
        if self._wrong_key(request):
            return self._unauthorized()
        if len(request.body) > self.max_audio_bytes:
            return too_large(len(request.body), self.max_audio_bytes)
        parts = request.multipart()
        if parts is None:
            return error(400, "Request must be multipart/form-data.", "invalid_request_error")
        fields, files = parts
        for required in ("file", "model"):
            if required not in (files if required == "file" else fields):
                return error(
                    400,
                    f"Missing required parameter: '{required}'.",
                    "invalid_request_error",
                    code="missing_required_parameter",
                    param=required,
                )
        upload = files["file"]
        ext = upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else ""
        if ext not in AUDIO_FORMATS:
            return error(
                400,
                f"Invalid file format. Supported formats: {AUDIO_FORMATS}",
                "invalid_request_error",
                param="file",
                code="unsupported_value",
            )
        self.audio.append({**fields, "filename": upload.filename, "content_type": upload.content_type,
                           "data": upload.data})  # fmt: skip
        if not self.transcripts:
            return server_error()
        answer = self.transcripts[min(self._transcribed, len(self.transcripts) - 1)]
        self._transcribed += 1
        return answer(fields) if callable(answer) else answer

    def _wrong_key(self, request: Request) -> bool:
        return request.headers.get("authorization") != f"Bearer {self.api_key}"

    @staticmethod
    def _unauthorized() -> Response:
        return error(
            401,
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            code="invalid_api_key",
        )

    def _list_models(self) -> Response:
        """ListModelsResponse: ``{"object": "list", "data": [Model{id, object, created, owned_by}]}``."""
        data = [
            {"id": m, "object": "model", "created": 1686935002, "owned_by": "openai"} for m in self.models
        ]
        return Response(status=200, body={"object": "list", "data": data})

    def _invalid(self, body: Any) -> Response | None:
        if not isinstance(body, dict):
            return error(400, "Request body must be a JSON object.", "invalid_request_error")
        for required in ("model", "messages"):
            if required not in body:
                return error(
                    400,
                    f"Missing required parameter: '{required}'.",
                    "invalid_request_error",
                    code="missing_required_parameter",
                    param=required,
                )
        response_format = body.get("response_format")
        if response_format is None:
            return None
        if self.rejects_response_format and response_format.get("type") == "json_schema":
            return error(
                400,
                "response_format of type 'json_schema' is not supported with this model.",
                "invalid_request_error",
                param="response_format",
            )
        if response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema") or {}
            schema = spec.get("schema") or {}
            if not spec.get("name"):
                return error(
                    400,
                    "Missing required parameter: 'response_format.json_schema.name'.",
                    "invalid_request_error",
                    param="response_format.json_schema.name",
                )
            if spec.get("strict") and not _strict_ok(schema):
                return error(
                    400,
                    "Invalid schema for response_format: In context=(), 'required' is required "
                    "to be supplied and to be an array including every key in properties.",
                    "invalid_request_error",
                    param="response_format",
                )
        return None


def _strict_ok(schema: dict[str, Any]) -> bool:
    """The strict-mode rules the real API enforces on object schemas (nested ones included)."""
    if schema.get("type") == "object":
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is not False or set(schema.get("required", [])) != set(props):
            return False
        return all(_strict_ok(sub) for sub in props.values())
    return all(_strict_ok(sub) for sub in schema.get("anyOf", []))
