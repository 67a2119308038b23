"""`leadflow qualify --catalog FILE [--engine offline|llm]`: JSON lines in, JSON lines out.

In:  {"id", "text", "received_at", "channel"} per line.
Out: {"id", "intent", "temperature", "service", "services", "preferred_date", "preferred_time",
"preferred_window", "name", "phone"}, one line per input line, same order; a line that cannot be
qualified gives {"id", "error"} and the run goes on. Blank input lines are skipped. Exit status: 0 every line answered, 1 some lines
were errors, 2 the run could not start (catalog unreadable, unknown engine).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

OUTPUT_FIELDS = (
    "intent",
    "temperature",
    "service",
    "services",
    "preferred_date",
    "preferred_time",
    "preferred_window",
    "name",
    "phone",
)
ENGINES = ("offline", "llm")

Qualifier = Callable[..., Any]


class LineError(ValueError):
    """A input line that cannot be qualified; the message is safe to print (no message text)."""


def _load_engine(engine: str) -> tuple[Qualifier | None, str | None]:
    if engine == "offline":
        from leadflow.domain.qualify.offline import qualify_offline

        return qualify_offline, None
    try:
        from leadflow.adapters.llm import qualify_with_llm
    except ImportError as exc:
        return None, f"engine llm unavailable: cannot import leadflow.adapters.llm ({exc.__class__.__name__})"
    return qualify_with_llm, None


def parse_received_at(value: Any, tz: ZoneInfo) -> datetime:
    """ISO 8601 with an offset («2026-03-12T09:55:00+07:00», «…Z»); a naive time is business-local."""
    if not isinstance(value, str) or not value.strip():
        raise LineError("received_at is required (ISO 8601 date-time)")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise LineError("received_at is not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _parse_line(line: str, tz: ZoneInfo) -> tuple[Any, str, datetime, str]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LineError(f"not valid JSON (column {exc.colno})") from None
    if not isinstance(record, dict):
        raise LineError("expected a JSON object")
    text = record.get("text")
    if not isinstance(text, str):
        raise LineError("text is required (a string)")
    channel = record.get("channel") or ""
    if not isinstance(channel, str):
        raise LineError("channel must be a string")
    return record.get("id"), text, parse_received_at(record.get("received_at"), tz), channel


def _record_id(line: str) -> Any:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record.get("id") if isinstance(record, dict) else None


def run(catalog_path: str, engine: str, stdin: TextIO, stdout: TextIO, *, fallback: bool = False) -> int:
    """``fallback``: with --engine llm, the offline engine answers what the LLM cannot (said on stderr);
    without it, an LLM that is not configured stops the run and one that fails gives an error line."""
    import os

    from leadflow.business import ConfigError, load_business_config

    if engine == "llm" and not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
        if not fallback:
            print(
                "leadflow qualify: --engine llm needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local endpoint "
                "such as Ollama or vLLM); add --fallback to let the offline engine answer instead",
                file=sys.stderr,
            )
            return 2
        print("leadflow qualify: WARNING: no LLM is configured — every line is answered by the offline engine",
              file=sys.stderr)  # fmt: skip

    if engine not in ENGINES:
        print(
            f"leadflow qualify: unknown engine {engine!r} (use one of: {', '.join(ENGINES)})", file=sys.stderr
        )
        return 2
    try:
        config = load_business_config(catalog_path)
    except (ConfigError, OSError) as exc:
        print(f"leadflow qualify: cannot load catalog: {exc}", file=sys.stderr)
        return 2
    tz = config.tz
    qualify, engine_error = _load_engine(engine)

    failed = 0
    for line in stdin:
        if not line.strip():
            continue
        try:
            if qualify is None:
                raise LineError(engine_error or "engine unavailable")
            record_id, text, received_at, channel = _parse_line(line, tz)
            if engine == "llm":
                result = qualify(
                    text, received_at, config.services, tz=tz, channel=channel, strict=not fallback
                )
            else:
                result = qualify(text, received_at, config.services, tz=tz, channel=channel)
            data = result.model_dump(mode="json")
            answer = {"id": record_id, **{name: data.get(name) for name in OUTPUT_FIELDS}}
        except LineError as exc:
            answer = {"id": _record_id(line), "error": str(exc)}
        except Exception as exc:  # one bad message must not stop the stream; the text stays out of the error
            if type(exc).__name__ == "LlmUnavailable":  # (the adapter is imported only for --engine llm)
                reason = f"llm unavailable: {exc} (--fallback answers offline)"
            else:
                reason = f"qualification failed: {exc.__class__.__name__}"
            answer = {"id": _record_id(line), "error": reason}
        if "error" in answer:
            failed += 1
        stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        stdout.flush()
    return 1 if failed else 0
