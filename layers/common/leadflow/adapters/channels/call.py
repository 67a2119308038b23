"""Telephony: our own call JSON, and adapters for Zadarma and Mango Office notifications.

The adapter is chosen by the query parameter ``provider`` (``zadarma`` | ``mango``; absent → our
JSON). CALL_SECRET is the shared secret for all three: our ``X-Call-Secret`` header (or ``secret``
query parameter), Zadarma's API secret (``Signature`` header), Mango's API salt (``sign`` field).

Our JSON (``POST /webhooks/call``, ``Content-Type: application/json``)::

    {
      "event": "incoming" | "missed" | "completed",   # required
      "call_id": "string",                            # required, the PBX's id of the call
      "caller": "+79161234567",                       # required for a lead: the client's number
      "called": "+74951234567",                       # optional: the business line
      "direction": "in" | "out",                      # optional, default "in"
      "started_at": "2026-03-02T10:15:00+03:00",      # optional, ISO 8601 with offset
      "duration_s": 95,                               # optional, talk time
      "recording_url": "https://…",                   # optional
      "transcript": "Клиент: …\\nОператор: …"          # optional: text, or [{"speaker","text"}]
    }

Which events make a lead (``message_id = call:<provider>:<call id>:<missed|completed>``; for
Zadarma ``call:zadarma:<digest of the signed fields>``, see ``_zadarma``):

- the end of an incoming call makes exactly one message: ``missed`` (hot: call back) or
  ``completed`` (answered; text = the client's lines of the transcript, or "");
- the start of a call (``incoming``, Zadarma NOTIFY_START, Mango ``events/call``) makes none:
  an end event always follows it and carries what the start does not (missed or not, duration,
  transcript). A lead made at the start would either be a second message for the same call or,
  keyed on the call alone, would swallow the end event's information as a duplicate. The cost:
  a call whose end notification is lost makes no lead — the providers retry failed deliveries;
- outgoing and internal calls make none (our staff calling out is not a new lead);
- a caller without a valid number (withheld, internal) makes none: nobody to call back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leadflow import clock
from leadflow.adapters.channels.base import WebhookError, WebhookRequest, WebhookResult, require_secret
from leadflow.adapters.channels.form import parse_sent_at
from leadflow.domain.models import CallInfo, Channel, Contact, InboundMessage
from leadflow.domain.phones import to_e164

PROVIDERS = ("leadflow", "zadarma", "mango")
CLIENT_SPEAKERS = ("клиент", "client", "customer", "caller", "абонент", "собеседник")
STAFF_SPEAKERS = ("оператор", "operator", "agent", "менеджер", "manager", "администратор", "admin", "staff")
ZD_ECHO = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
MAX_ID_CHARS = 128
# Zadarma's call_start must fall in this window around our wall clock (see _zadarma_fresh).
ZADARMA_MAX_AGE = timedelta(hours=24)
ZADARMA_MAX_AHEAD = timedelta(hours=12)


class CallEvent(BaseModel):
    """Our own documented call JSON."""

    model_config = ConfigDict(extra="ignore")

    event: Literal["incoming", "missed", "completed"]
    call_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    caller: str | None = Field(default=None, max_length=40)
    called: str | None = Field(default=None, max_length=40)
    direction: Literal["in", "out"] = "in"
    started_at: str | None = Field(default=None, max_length=64)
    duration_s: int | None = Field(default=None, ge=0, le=86_400)
    recording_url: str | None = Field(default=None, max_length=2000)
    transcript: str | list[dict[str, Any]] | None = None


def handle_webhook(request: WebhookRequest) -> WebhookResult:
    from leadflow.settings import secret

    provider, _, subpath = (request.query.get("provider") or "leadflow").partition("/")
    provider = provider.strip().lower()
    if provider not in PROVIDERS:
        raise WebhookError(400, f"unknown call provider {provider[:20]!r} (use zadarma or mango)")
    call_secret = secret("CALL_SECRET")
    if provider == "zadarma":
        return _zadarma(request, call_secret)
    if provider == "mango":
        return _mango(request, call_secret, subpath)
    given = request.header("x-call-secret") or request.query.get("secret")
    require_secret(call_secret, given, "CALL_SECRET")
    _require_post(request)
    return _own_json(request)


def _require_post(request: WebhookRequest) -> None:
    if request.method.upper() != "POST":
        raise WebhookError(405, f"call webhook accepts POST, got {request.method[:10]!r}")


def _json_object(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError(400, f"{what} is not valid JSON") from None
    if not isinstance(raw, dict):
        raise WebhookError(400, f"{what} must be a JSON object")
    return raw


def _form_fields(body: bytes, what: str) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookError(400, f"{what} body is not UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def client_lines(transcript: str | list[dict[str, Any]] | None) -> str:
    """The client's side of a transcript; a transcript without speaker labels is taken whole."""
    if not transcript:
        return ""
    if isinstance(transcript, list):
        said = []
        for turn in transcript:
            if not isinstance(turn, dict):
                continue
            speaker = str(turn.get("speaker") or turn.get("role") or turn.get("channel") or "").lower()
            text = str(turn.get("text") or "").strip()
            if text and speaker.startswith(CLIENT_SPEAKERS):
                said.append(text)
        return "\n".join(said)[:10_000]
    labelled = False
    said = []
    for line in transcript.splitlines():
        speaker, sep, text = line.partition(":")
        speaker = speaker.strip().lower()
        if sep and speaker.startswith(CLIENT_SPEAKERS):
            labelled = True
            if text.strip():
                said.append(text.strip())
        elif sep and speaker.startswith(STAFF_SPEAKERS):
            labelled = True
    return ("\n".join(said) if labelled else transcript.strip())[:10_000]


def _call_message(
    *,
    provider: str,
    call_id: str,
    missed: bool,
    message_id: str | None = None,
    caller: str | None,
    called: str | None,
    received_at: datetime,
    duration_s: int | None = None,
    recording_url: str | None = None,
    text: str = "",
) -> WebhookResult:
    phone = to_e164(caller)
    if not phone:
        return WebhookResult(note="caller number withheld or invalid: nobody to call back")
    outcome = "missed" if missed else "completed"
    line = to_e164(called)
    message = InboundMessage(
        message_id=message_id or f"call:{provider}:{call_id[:MAX_ID_CHARS]}:{outcome}",
        channel=Channel.call,
        chat_id=phone,
        contact=Contact(phone=phone, phone_verified=True),  # the caller id
        text=text,
        received_at=received_at,
        source="call",
        call=CallInfo(
            direction="in",
            missed=missed,
            called_number=line or (called or None),
            duration_s=None if missed else duration_s,
            recording_url=recording_url,
        ),
        recipient=line,
    )
    return WebhookResult(messages=[message])


# --------------------------------------------------------------------------- our JSON


def _own_json(request: WebhookRequest) -> WebhookResult:
    raw = _json_object(request.body, "call body")
    try:
        event = CallEvent.model_validate(raw)
    except ValidationError as exc:
        # field names only: the inputs may hold phone numbers
        where = ", ".join(sorted({".".join(str(p) for p in e["loc"][:1]) for e in exc.errors()}))
        raise WebhookError(400, f"call body: invalid or missing {where}") from None
    if event.direction == "out":
        return WebhookResult(note="outgoing call: not a lead")
    if event.event == "incoming":
        return WebhookResult(note="call started: its missed/completed event makes the lead")
    now = clock.now()
    return _call_message(
        provider="leadflow",
        call_id=event.call_id,
        missed=event.event == "missed",
        caller=event.caller,
        called=event.called,
        received_at=parse_sent_at(event.started_at, now) or now,
        duration_s=event.duration_s,
        recording_url=event.recording_url,
        text="" if event.event == "missed" else client_lines(event.transcript),
    )


# --------------------------------------------------------------------------- Zadarma


def zadarma_signature(signed: str, api_secret: str) -> str:
    """Zadarma's ``Signature``: base64 of the *hex* HMAC-SHA1 (PHP's hash_hmac default output)."""
    digest = hmac.new(api_secret.encode(), signed.encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(digest.encode()).decode()


ZADARMA_SIGNED_FIELDS = {
    "NOTIFY_START": ("caller_id", "called_did", "call_start"),
    "NOTIFY_INTERNAL": ("caller_id", "called_did", "call_start"),
    "NOTIFY_END": ("caller_id", "called_did", "call_start"),
    "NOTIFY_OUT_START": ("internal", "destination", "call_start"),
    "NOTIFY_OUT_END": ("internal", "destination", "call_start"),
    "NOTIFY_RECORD": ("pbx_call_id", "call_id_with_rec"),
}


def _zadarma(request: WebhookRequest, api_secret: str | None) -> WebhookResult:
    """Zadarma's notifications, verified, fresh, and each call's end taken once.

    The signature covers only the fields in ZADARMA_SIGNED_FIELDS — for an incoming call
    ``caller_id.called_did.call_start``, the same string in NOTIFY_START and NOTIFY_END — so
    everything else in a request (``event``, ``pbx_call_id``, ``disposition``, ``duration``) can
    be changed by whoever captured one. Hence:

    - the lead's ``message_id`` is a digest of the signed string, not ``pbx_call_id``: a captured
      request, however its unsigned fields are changed, or a start relabelled as an end, dedupes
      against the call's own end (one call, one lead); ingest remembers keys for 14 days;
    - ``call_start`` must lie in the window of ``_zadarma_fresh``, far shorter than those 14
      days, so an older capture cannot come back once its key is forgotten.

    What is left to a captured request within the window: racing the call's real NOTIFY_END with
    a changed disposition (the one lead then says missed instead of answered, or the reverse).
    """
    if not api_secret:
        raise WebhookError(403, "CALL_SECRET is not configured: channel refuses all requests")
    echo = request.query.get("zd_echo")
    if echo is not None:
        # Zadarma checks a new notification URL by GET ?zd_echo=<random> and wants it back verbatim
        if not ZD_ECHO.fullmatch(echo):
            raise WebhookError(400, "zd_echo is not a plain token")
        return WebhookResult(body=echo, note="zadarma url check")
    _require_post(request)
    fields = _form_fields(request.body, "zadarma")
    event = fields.get("event", "").upper()
    signed_fields = ZADARMA_SIGNED_FIELDS.get(event)
    if signed_fields is None:
        return WebhookResult(note=f"zadarma event {event[:30]!r} not used")
    signed = "".join(fields.get(f, "") for f in signed_fields)
    expected = zadarma_signature(signed, api_secret)
    given = request.header("signature") or ""
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise WebhookError(403, "zadarma Signature does not match")
    if "call_start" in signed_fields:
        _zadarma_fresh(fields.get("call_start", ""))
    if event in ("NOTIFY_OUT_START", "NOTIFY_OUT_END"):
        return WebhookResult(note="outgoing call: not a lead")
    if event == "NOTIFY_RECORD":
        return WebhookResult(note="zadarma recording ready: carries no caller number, not a lead")
    if event in ("NOTIFY_START", "NOTIFY_INTERNAL"):
        return WebhookResult(note="call started: NOTIFY_END makes the lead")
    call_id = fields.get("pbx_call_id", "").strip()
    if not call_id:
        raise WebhookError(400, "zadarma NOTIFY_END without pbx_call_id")
    duration = fields.get("duration", "").strip()
    return _call_message(
        provider="zadarma",
        call_id=call_id,
        message_id=f"call:zadarma:{hashlib.sha256(signed.encode()).hexdigest()[:32]}",
        missed=fields.get("disposition", "").strip().lower() != "answered",
        caller=fields.get("caller_id"),
        called=fields.get("called_did"),
        # call_start is in the account's zone, which CALL_TIMEZONE may name wrongly: our clock
        received_at=clock.now(),
        duration_s=min(int(duration), 86_400) if duration.isdigit() else None,
    )


def _zadarma_fresh(call_start: str) -> None:
    """403 unless ``call_start`` is at most ZADARMA_MAX_AGE old and ZADARMA_MAX_AHEAD ahead.

    Zadarma sends ``call_start`` as "YYYY-MM-DD HH:MM:SS" without a zone; we take it to be the
    account's time zone (Zadarma's statistics use it; not confirmed for notifications), which
    CALL_TIMEZONE names (default Europe/Moscow, Zadarma's and Novofon's default for Russian
    accounts). 24 h covers the longest call and Zadarma's retries. Ahead is allowed up to 12 h
    on purpose: a captured request is always from the past, and a call_start "ahead" only means
    the account's zone is east of CALL_TIMEZONE — refusing it would drop every call of a salon
    in Novosibirsk whose operator left the default. A zone set wrong by k hours east shortens
    the 24 h by k; replays stay covered by the dedupe either way.
    """
    from leadflow.settings import settings

    try:
        zone = ZoneInfo(settings().call_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise WebhookError(403, "CALL_TIMEZONE is not a time zone: zadarma refuses all requests") from None
    try:
        started = datetime.strptime(call_start.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
    except ValueError:
        raise WebhookError(400, "zadarma call_start is not 'YYYY-MM-DD HH:MM:SS'") from None
    age = clock.wall_now() - started
    if age > ZADARMA_MAX_AGE:
        hours = int(age.total_seconds() // 3600)
        raise WebhookError(
            403, f"zadarma call_start is {hours} h old: a replay (or CALL_TIMEZONE is not the account's zone)"
        )
    if -age > ZADARMA_MAX_AHEAD:
        hours = int(-age.total_seconds() // 3600)
        raise WebhookError(
            403, f"zadarma call_start is {hours} h ahead: CALL_TIMEZONE is not the account's zone?"
        )


# --------------------------------------------------------------------------- Mango Office


def mango_sign(api_key: str, payload_json: str, api_salt: str) -> str:
    return hashlib.sha256((api_key + payload_json + api_salt).encode()).hexdigest()


def _mango(request: WebhookRequest, api_salt: str | None, subpath: str) -> WebhookResult:
    if not api_salt:
        raise WebhookError(403, "CALL_SECRET is not configured: channel refuses all requests")
    _require_post(request)
    fields = _form_fields(request.body, "mango")
    api_key, given, payload_json = fields.get("vpbx_api_key"), fields.get("sign"), fields.get("json")
    if api_key is None or given is None or payload_json is None:
        raise WebhookError(400, "mango body needs vpbx_api_key, sign and json")
    if not hmac.compare_digest(mango_sign(api_key, payload_json, api_salt), given.strip().lower()):
        raise WebhookError(403, "mango sign does not match")
    data = _json_object(payload_json, "mango json")
    # the event kind comes from the path Mango appends (events/call, events/summary) when the
    # route passes it on; otherwise from the fields each kind carries
    is_summary = subpath.endswith("events/summary") or ("entry_result" in data and "call_state" not in data)
    if not is_summary:
        if "call_state" in data or subpath.endswith("events/call"):
            return WebhookResult(note="mango call state: events/summary makes the lead")
        return WebhookResult(note="mango event not used")
    return _mango_summary(data)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _party_number(party: Any) -> str | None:
    if isinstance(party, Mapping):
        number = party.get("number")
        return str(number) if isinstance(number, str | int) and not isinstance(number, bool) else None
    return None


def _mango_summary(data: Mapping[str, Any]) -> WebhookResult:
    direction = _int(data.get("call_direction"))
    if direction != 1:  # 1 incoming, 2 outgoing, 0 internal
        return WebhookResult(note="mango outgoing or internal call: not a lead")
    entry_id = data.get("entry_id")
    if not isinstance(entry_id, str | int) or isinstance(entry_id, bool) or not str(entry_id).strip():
        raise WebhookError(400, "mango summary without entry_id")
    create_time, talk_time, end_time = (_int(data.get(k)) for k in ("create_time", "talk_time", "end_time"))
    answered = _int(data.get("entry_result")) == 1 and bool(talk_time)
    now = clock.now()
    received_at = parse_sent_at(create_time, now) if create_time else None
    duration = end_time - talk_time if answered and talk_time and end_time and end_time >= talk_time else None
    to = data.get("to")
    called = (to.get("line_number") if isinstance(to, Mapping) else None) or data.get("line_number")
    return _call_message(
        provider="mango",
        call_id=str(entry_id).strip(),
        missed=not answered,
        caller=_party_number(data.get("from")),
        called=str(called) if isinstance(called, str | int) else _party_number(to),
        received_at=received_at or now,
        duration_s=min(duration, 86_400) if duration is not None else None,
    )
