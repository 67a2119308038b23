"""What every channel's sender shares: one way to make an HTTP call and read its failure, and one
way to cut a long text into the parts a channel accepts.

``post`` maps the transport's failures to the send outcomes the messenger understands: a failure
before the request left (connect timeout, refused connection) is retryable; a read timeout after
it left is an ``UnknownOutcome`` when it was a send — the message may have arrived, so it is
never blindly sent again. Error texts never hold the URL (a bot token or a webhook code lives there).

A request never outlives the function that makes it (``end_requests_by``, set from the Lambda
context): its timeouts are cut to the invocation's time left, so a slow answer is recorded as an
outcome rather than the function being killed mid-request, and a request with no time left is
not started (retryable: the queue brings it back to a fresh invocation).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from leadflow.adapters.channels.base import SendError, UnknownOutcome

DEADLINE_MARGIN_S = 2.0  # kept for recording the outcome and answering the queue
MIN_REQUEST_S = 1.0  # less time than this left: the request is not started

_deadline: float | None = None  # wall-clock epoch seconds; None outside a Lambda invocation


def end_requests_by(deadline: float | None) -> None:
    """Every request from now on ends by ``deadline`` (epoch seconds) less a margin; None: no limit."""
    global _deadline
    _deadline = deadline


def _within_deadline(what: str, timeout: float | tuple[float, float]) -> float | tuple[float, float]:
    if _deadline is None:
        return timeout
    left = _deadline - time.time() - DEADLINE_MARGIN_S
    if left < MIN_REQUEST_S:
        ends_in = max(left, 0) + DEADLINE_MARGIN_S
        raise SendError(f"{what}: not started, the invocation ends in {ends_in:.0f} s", retryable=True)
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return (min(connect, left), min(read, left))


def post(
    session: Any,
    url: str,
    *,
    what: str,
    timeout: float | tuple[float, float],
    sending: bool = True,
    **kwargs: Any,
) -> Any:
    """``session.post`` with its failures as ``SendError``s; the response otherwise (any status)."""
    import requests

    timeout = _within_deadline(what, timeout)
    failure: SendError | None = None
    try:
        return session.post(url, timeout=timeout, **kwargs)
    except (requests.ConnectTimeout, requests.exceptions.SSLError):
        failure = SendError(f"{what}: connect timeout", retryable=True)
    except requests.ReadTimeout:
        failure = (
            UnknownOutcome(f"{what}: no answer in time, outcome unknown")
            if sending
            else SendError(f"{what}: read timeout", retryable=True)
        )
    except requests.ConnectionError:
        failure = SendError(f"{what}: connection failed", retryable=True)
    except requests.RequestException as exc:
        failure = SendError(f"{what}: request failed ({type(exc).__name__})", retryable=True)
    # Raised outside the except block so the chained exception (its text holds the URL) is dropped.
    raise failure


# Secrets some APIs put in the URL path: a Telegram bot token, a Bitrix24 inbound webhook's code.
_SECRET_IN_PATH = re.compile(r"(/bot)\d+:[\w-]+(?=/)|(/rest/\d+/)[^/\s\"]+(?=/)")


class _RedactSecretsInUrls(logging.Filter):
    """urllib3 logs each request line at DEBUG, path included: the secret in it never reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_url(record.msg)
        return True


_REDACTOR = _RedactSecretsInUrls()


def redact_url(text: str) -> str:
    return _SECRET_IN_PATH.sub(lambda m: f"{m.group(1) or m.group(2)}***", text)


def keep_url_secrets_out_of_logs() -> None:
    """Idempotent: the transport's loggers get the redacting filter once per process."""
    for name in ("urllib3.connectionpool", "urllib3.connection", "requests"):
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Parts of at most ``limit`` (as ``measure`` counts), cut at a paragraph, line, sentence or word."""
    text = text.strip()
    if not text:
        return []
    return [part for part in _split(text, limit, measure) if part]


def _split(text: str, limit: int, measure: Callable[[str], int]) -> Iterator[str]:
    while measure(text) > limit:
        head = prefix_within(text, limit, measure)
        cut = _best_cut(text, len(head))
        yield text[:cut].rstrip()
        text = text[cut:].lstrip()
    yield text


def prefix_within(text: str, limit: int, measure: Callable[[str], int] = len) -> str:
    """The longest prefix that fits (binary search: ``measure`` grows with length)."""
    low, high = 1, min(len(text), limit)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


_BOUNDARIES = (
    re.compile(r"\n\s*\n"),  # paragraph
    re.compile(r"\n"),  # line
    re.compile(r"[.!?…](?:[\"»)]*)\s"),  # sentence
    re.compile(r"\s"),  # word
)


def _best_cut(text: str, fits: int) -> int:
    """Just after the last boundary within ``text[:fits]``, preferring coarse ones in its second half.

    The search reaches one character further: every boundary ends in whitespace, which the cut
    drops, so a sentence that ends exactly at the limit still counts.
    """
    window = text[: fits + 1]
    floor = fits // 2
    for boundary in _BOUNDARIES:
        ends = [m.end() for m in boundary.finditer(window) if m.end() > floor]
        if ends:
            return ends[-1]
    return fits
