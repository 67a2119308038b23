"""Voice messages to text through an OpenAI-compatible endpoint: ``POST {base}/audio/transcriptions``
(multipart: ``file``, ``model``), answered ``{"text": "..."}``. No ``language``: the model hears
which language is spoken, so a tourist's English voice stays English (and is answered in English).

The server tells the format by the file's name, so a voice note goes up as ``voice.ogg``
(Telegram's ``.oga`` is OGG/Opus too), ``voice.mp3`` and so on. Errors are read from the documented
body (``{"error": {"message", "type", "code"}}``): a refused key (401), a file too large (413) and
a spent quota (429 ``insufficient_quota``) will not get better by trying again; a rate limit
(429), a timeout or a 5xx may.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leadflow.adapters.media import Blob, extension

if TYPE_CHECKING:
    import openai

DEFAULT_MODEL = "whisper-1"
# Formats the endpoint accepts by name; anything else goes up under the name of its container.
_UPLOAD_NAMES = {"ogg": "ogg", "oga": "ogg", "opus": "ogg", "mp3": "mp3", "m4a": "m4a", "mp4": "mp4",
                 "wav": "wav", "webm": "webm", "flac": "flac", "mpeg": "mpeg", "mpga": "mpga", "aac": "m4a"}  # fmt: skip
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # "maximum request size is 25 MiB"


class TranscriptionFailed(Exception):
    """No transcript. ``retryable``: trying again later may work (rate limit, timeout, 5xx)."""

    def __init__(self, reason: str, *, retryable: bool):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Transcriber:
    """``transcribe(blob, timeout_s)`` → the words. The client is built on first use (openai is
    imported only by a score that has a voice to transcribe)."""

    def __init__(
        self, api_key: str, base_url: str | None, model: str = DEFAULT_MODEL, *, language: str | None = None
    ):
        self._api_key = api_key
        self._base_url = base_url
        self.model = model
        self.language = language
        self._client: openai.OpenAI | None = None

    def __repr__(self) -> str:
        return f"Transcriber(base_url={self._base_url!r}, model={self.model!r})"

    def _openai(self) -> openai.OpenAI:
        if self._client is None:
            from leadflow.adapters.llm import make_client

            self._client = make_client(self._api_key, self._base_url, 30.0)
        return self._client

    def transcribe(self, blob: Blob, timeout_s: float) -> str:
        import openai

        if len(blob.data) > MAX_UPLOAD_BYTES:
            raise TranscriptionFailed("the recording is larger than the endpoint takes", retryable=False)
        ext = _UPLOAD_NAMES.get(extension(blob.mime_type, blob.file_name, "voice"), "ogg")
        mime = {"ogg": "audio/ogg", "mp3": "audio/mpeg", "m4a": "audio/mp4", "wav": "audio/wav"}.get(
            ext, blob.mime_type or "application/octet-stream"
        )
        hint: dict[str, Any] = {"language": self.language} if self.language else {}
        try:
            answer: Any = self._openai().audio.transcriptions.create(
                model=self.model,
                file=(f"voice.{ext}", blob.data, mime),
                response_format="json",
                timeout=max(timeout_s, 1.0),
                **hint,
            )
        except openai.AuthenticationError:
            raise TranscriptionFailed(
                "transcription: the API key was refused (401)", retryable=False
            ) from None
        except openai.RateLimitError as exc:
            quota = _code(exc) == "insufficient_quota"
            raise TranscriptionFailed(
                "transcription: " + ("quota spent (429)" if quota else "rate limited (429)"),
                retryable=not quota,
            ) from None
        except openai.APIStatusError as exc:
            too_large = exc.status_code == 413
            raise TranscriptionFailed(
                f"transcription: HTTP {exc.status_code}" + (" (file too large)" if too_large else ""),
                retryable=exc.status_code >= 500,
            ) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise TranscriptionFailed(f"transcription: {type(exc).__name__}", retryable=True) from None
        text = answer if isinstance(answer, str) else getattr(answer, "text", "")
        return " ".join(str(text or "").split())


def _code(exc: Any) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return error.get("code") or error.get("type")
    return None
