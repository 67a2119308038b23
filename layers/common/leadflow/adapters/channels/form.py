"""Website forms and chatbot builders (Tilda and similar, ManyChat / Chatfuel "external request").

Auth: the FORM_SECRET in the ``X-Form-Secret`` header, or in the ``secret`` query parameter for
builders that cannot set headers (Tilda's webhook URL carries it). Bodies: a JSON object or
``application/x-www-form-urlencoded``; the content type comes from the header, else it is sniffed.

Field names are matched case-insensitively after folding spaces and dashes to underscores, so
Chatfuel's ``"first name"`` and Tilda's ``Name`` land on the same key as ``first_name``/``name``.

Chatbot builders. A ManyChat post ("full contact data": ``live_chat_url``, ``page_id``…) names its
subscriber in ``id`` and the messenger they write from (``ig_id`` → Instagram, ``whatsapp_phone`` →
WhatsApp, ``telegram_id`` → Telegram, else Facebook Messenger); a Chatfuel post names its user in
``messenger user id`` (or ``chatfuel user id``). The message carries them as ``builder``, so the
reply goes back in the builder's chat — a subscriber who left no phone is answered too.

Dedupe: ``message_id`` is ``form:<submission id>`` when the builder sends one of its own
(Tilda's ``tranid``, ``submission_id``, ``request_id``): a retry of that post is a duplicate
however late it comes. A field named plain ``id`` is no submission id — a site's hidden ``id``
usually names the form, and taking it for the submission made every later submission a
duplicate of the first for as long as ingest remembers keys (14 days); ManyChat's ``id`` is the
subscriber. Without a builder id the ``message_id`` is ``form:hash:<digest>`` over the normalised
fields (``id`` included) and the ``REPEAT_WINDOW`` slot of the submission time: a double click or
a builder's quick retry of the same post is one message, the same form sent again later is a new
one. The price of fixed slots: a double click that straddles a slot boundary makes a second
message (it joins the same open lead, since the contact is the same).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from leadflow import clock
from leadflow.adapters.channels.base import WebhookError, WebhookRequest, WebhookResult, require_secret
from leadflow.domain.models import Builder, BuilderRef, Channel, Contact, InboundMessage, Utm
from leadflow.domain.phones import to_e164

NAME_KEYS = ("name", "имя", "fio", "фио", "client_name", "full_name", "first_name", "your_name", "ваше_имя")
LAST_NAME_KEYS = ("last_name", "фамилия")
PHONE_KEYS = (
    "phone",
    "телефон",
    "tel",
    "phone_number",
    "mobile",
    "номер_телефона",
    "ваш_телефон",
    "whatsapp_phone",
    "optin_phone",
)
SERVICE_KEYS = ("service", "услуга")
COMMENT_KEYS = (
    "comment",
    "comments",
    "textarea",
    "message",
    "text",
    "комментарий",
    "сообщение",
    "question",
    "вопрос",
    "last_input_text",
    "last_user_freeform_input",
)
EMAIL_KEYS = ("email", "e_mail", "optin_email", "почта")
PAGE_KEYS = ("page", "page_url", "referer", "referrer", "url")
PROMO_KEYS = ("promo", "promocode", "promo_code", "промокод")
BRANCH_KEYS = ("branch", "filial", "филиал", "salon", "салон")
SUBMISSION_ID_KEYS = ("tranid", "submission_id", "request_id")
USER_ID_KEYS = ("messenger_user_id", "chatfuel_user_id", "subscriber_id", "user_id")
SENT_AT_KEYS = ("submitted_at", "created_at", "sent_at", "submission_time", "timestamp", "last_interaction")
UTM_FIELDS = ("source", "medium", "campaign", "content", "term")

# Builder metadata that says nothing about what the client wants: kept out of the text.
TECHNICAL_KEYS = frozenset(
    {
        "id",  # a site's own hidden field (often the form's name) or ManyChat's subscriber id
        "formid",
        "formname",
        "form_id",
        "form_name",
        "cookies",
        "secret",
        "test",
        "utm",
        "custom_fields",
        "fields",
        "tags",
        "page_id",
        "status",
        "gender",
        "profile_pic",
        "profile_pic_url",
        "locale",
        "language",
        "timezone",
        "live_chat_url",
        "subscribed",
        "last_interaction",
        "last_seen",
        "is_followup_enabled",
        "source",
        "ref",
        "last_visited_block_name",
        "last_visited_block_id",
        "last_clicked_button_name",
        "chatfuel_user_id",
        "messenger_user_id",
    }
)
# Keys whose presence marks ManyChat's "full contact data" (its `id` is then the subscriber).
MANYCHAT_MARKERS = frozenset(
    {"live_chat_url", "page_id", "custom_fields", "last_input_text", "last_interaction"}
)
CONTAINER_KEYS = ("custom_fields", "fields", "data")

MAX_EXTRA_FIELDS = 10
MAX_VALUE_CHARS = 1000
MAX_ID_CHARS = 128
FUTURE_TOLERANCE = timedelta(minutes=5)
# Identical posts without a builder id within one slot of this length are one submission.
REPEAT_WINDOW = timedelta(minutes=10)


def handle_webhook(request: WebhookRequest) -> WebhookResult:
    from leadflow.settings import secret

    given = request.header("x-form-secret") or request.query.get("secret")
    require_secret(secret("FORM_SECRET"), given, "FORM_SECRET")
    if request.method.upper() != "POST":
        raise WebhookError(405, f"form webhook accepts POST, got {request.method[:10]!r}")
    fields = parse_form_body(request.header("content-type"), request.body)
    if fields == {"test": "test"}:
        return WebhookResult(note="form builder connection test")
    return WebhookResult(messages=[form_message(fields)])


def parse_form_body(content_type: str | None, body: bytes) -> dict[str, Any]:
    """The submitted fields as one flat dict with folded keys; raises WebhookError(400)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookError(400, "form body is not UTF-8") from None
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind not in ("application/json", "application/x-www-form-urlencoded"):
        stripped = text.lstrip()
        if stripped.startswith(("{", "[")):
            kind = "application/json"
        elif "=" in stripped:
            kind = "application/x-www-form-urlencoded"
        else:
            raise WebhookError(400, "form body is neither JSON nor form-encoded")
    if kind == "application/json":
        try:
            raw: Any = json.loads(text)
        except ValueError:
            raise WebhookError(400, "form body is not valid JSON") from None
        if not isinstance(raw, dict):
            raise WebhookError(400, "form body must be a JSON object")
        return _flatten(raw)
    pairs = parse_qsl(text, keep_blank_values=True)
    if not pairs:
        raise WebhookError(400, "form body has no fields")
    flat: dict[str, Any] = {}
    for key, value in pairs:
        flat.setdefault(fold_key(key), value)
    return flat


def fold_key(key: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(key).strip().lower())


def _flatten(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level fields win; builder containers (custom_fields, fields, data) fill the gaps."""
    flat = {fold_key(k): v for k, v in raw.items()}
    for container in CONTAINER_KEYS:
        inner = flat.get(container)
        if isinstance(inner, dict):
            for key, value in inner.items():
                flat.setdefault(fold_key(key), value)
    return flat


def _scalar(value: Any) -> str | None:
    """A field value as trimmed text; lists (checkboxes) are joined, objects are ignored."""
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, list):
        parts = [p for p in (_scalar(v) for v in value if not isinstance(v, list)) if p]
        return ", ".join(parts)[:MAX_VALUE_CHARS] or None
    text = str(value).strip()
    return text[:MAX_VALUE_CHARS] or None


def _first(fields: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        raw = fields.get(key)
        if isinstance(raw, bool):  # ManyChat's optin_email: false is a flag, not an address
            continue
        value = _scalar(raw)
        if value:
            return value
    return None


def _utm(fields: Mapping[str, Any], page_url: str | None) -> Utm:
    values: dict[str, str] = {}
    nested = fields.get("utm")
    sources: list[Mapping[str, Any]] = [fields]
    if isinstance(nested, dict):
        sources.append({fold_key(k): v for k, v in nested.items()})
    for part in UTM_FIELDS:
        for source in sources:
            value = _scalar(source.get(f"utm_{part}")) or (
                _scalar(source.get(part)) if source is not fields else None
            )
            if value:
                values[part] = value[:200]
                break
    for fallback in (_tilda_utm_cookie(fields.get("cookies")), _query_utm(page_url)):
        for part, value in fallback.items():
            values.setdefault(part, value)
    return Utm(**values)


def _tilda_utm_cookie(cookies: Any) -> dict[str, str]:
    """Tilda keeps the landing UTM in its TILDAUTM cookie (``utm_source=x|||utm_medium=y``, quoted)."""
    if not isinstance(cookies, str) or "TILDAUTM=" not in cookies:
        return {}
    raw = cookies.split("TILDAUTM=", 1)[1].split(";", 1)[0]
    found: dict[str, str] = {}
    for item in re.split(r"\|\|\||&", unquote(raw)):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if sep and key.startswith("utm_") and key[4:] in UTM_FIELDS and value.strip():
            found[key[4:]] = unquote(value.strip())[:200]
    return found


def _query_utm(page_url: str | None) -> dict[str, str]:
    if not page_url:
        return {}
    try:
        query = urlsplit(page_url).query
    except ValueError:
        return {}
    found: dict[str, str] = {}
    for key, value in parse_qsl(query):
        key = key.lower()
        if key.startswith("utm_") and key[4:] in UTM_FIELDS and value:
            found.setdefault(key[4:], value[:200])
    return found


def parse_sent_at(value: Any, now: datetime) -> datetime | None:
    """A builder's own submission time (ISO with offset, or unix seconds/ms); None when unusable."""
    if value is None or isinstance(value, bool):
        return None
    moment: datetime | None = None
    if isinstance(value, int | float) or (
        isinstance(value, str) and re.fullmatch(r"\d{9,13}(\.\d+)?", value)
    ):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        try:
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None  # a wall-clock time in an unknown zone is worse than our own clock
    if moment is None or moment > now + FUTURE_TOLERANCE:
        return None
    return moment.astimezone(UTC)


def _is_manychat(fields: Mapping[str, Any]) -> bool:
    return bool(MANYCHAT_MARKERS & fields.keys())


CHATFUEL_MARKERS = frozenset({"chatfuel_user_id", "messenger_user_id", "last_visited_block_name"})
# ManyChat's contact fields that tell which messenger a subscriber writes from.
MANYCHAT_CHANNELS = (("ig_id", "instagram"), ("whatsapp_phone", "whatsapp"), ("telegram_id", "telegram"))


def _builder(fields: Mapping[str, Any], manychat: bool) -> BuilderRef | None:
    """The builder a subscriber can be answered through, when the post came from one."""
    if manychat:
        subscriber = _first(fields, ("id", "subscriber_id"))
        if not subscriber:
            return None
        channel = next((name for key, name in MANYCHAT_CHANNELS if _first(fields, (key,))), None)
        return BuilderRef(name=Builder.manychat, user_id=subscriber[:MAX_ID_CHARS], channel=channel)
    if CHATFUEL_MARKERS & fields.keys():
        user = _first(fields, ("messenger_user_id", "chatfuel_user_id"))
        return BuilderRef(name=Builder.chatfuel, user_id=user[:MAX_ID_CHARS]) if user else None
    return None


def _name(fields: Mapping[str, Any]) -> str | None:
    first = _first(fields, NAME_KEYS)
    last = _first(fields, LAST_NAME_KEYS)
    if first and last and last not in first:
        return f"{first} {last}"[:200]
    return (first or last or "")[:200] or None


def _extras(fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Fields we have no name for ("Дата", "Мастер", …): they still help the qualifier."""
    known = set(
        NAME_KEYS
        + LAST_NAME_KEYS
        + PHONE_KEYS
        + SERVICE_KEYS
        + COMMENT_KEYS
        + EMAIL_KEYS
        + PAGE_KEYS
        + PROMO_KEYS
        + BRANCH_KEYS
        + SUBMISSION_ID_KEYS
        + USER_ID_KEYS
        + SENT_AT_KEYS
    )
    extras: list[tuple[str, str]] = []
    for key, value in fields.items():
        if key in known or key in TECHNICAL_KEYS or key.startswith(("utm_", "ig_", "_")):
            continue
        text = _scalar(value)
        if text:
            label = key.replace("_", " ")[:60]
            extras.append((label[:1].upper() + label[1:], text))
        if len(extras) >= MAX_EXTRA_FIELDS:
            break
    return extras


def form_message(fields: Mapping[str, Any], now: datetime | None = None) -> InboundMessage:
    """One submission → one InboundMessage; WebhookError(400) when nothing in it is usable."""
    now = now or clock.now()
    name = _name(fields)
    raw_phone = _first(fields, PHONE_KEYS)
    phone = to_e164(raw_phone)
    email = _first(fields, EMAIL_KEYS)
    service = _first(fields, SERVICE_KEYS)
    comment = _first(fields, COMMENT_KEYS)
    promo = _first(fields, PROMO_KEYS)
    branch = _first(fields, BRANCH_KEYS)
    page_url = _first(fields, PAGE_KEYS)
    extras = _extras(fields)
    manychat = _is_manychat(fields)
    user_id = _first(fields, USER_ID_KEYS) or (_first(fields, ("id",)) if manychat else None)

    if not (raw_phone or name or comment or service or email or extras):
        raise WebhookError(400, "form has no usable field (no phone, name, email or text)")

    lines = []
    for label, value in (
        ("Имя", name),
        ("Телефон", phone or raw_phone),
        ("Email", email),
        ("Услуга", service),
        ("Филиал", branch),
        ("Комментарий", comment),
    ):
        if value:
            lines.append(f"{label}: {value}")
    lines.extend(f"{label}: {value}" for label, value in extras)
    if promo:
        lines.append(f"Промокод: {promo}")

    received_at = parse_sent_at(next((fields[k] for k in SENT_AT_KEYS if fields.get(k)), None), now) or now
    submission_id = None if manychat else _first(fields, SUBMISSION_ID_KEYS)
    if submission_id:
        message_id = f"form:{submission_id[:MAX_ID_CHARS]}"
    else:
        digest_input = {
            "name": (name or "").casefold(),
            "phone": phone or re.sub(r"\D", "", raw_phone or ""),
            "email": (email or "").casefold(),
            "service": service,
            "comment": comment,
            "promo": promo,
            "extras": sorted(extras),
            "user": user_id,
            "form": _first(fields, ("formid", "form_id", "formname", "form_name")),
            "id": _first(fields, ("id",)),
            "slot": int(received_at.timestamp() // REPEAT_WINDOW.total_seconds()),
        }
        if branch:
            digest_input["branch"] = branch
        canonical = json.dumps(digest_input, ensure_ascii=False, sort_keys=True)
        message_id = f"form:hash:{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"

    anonymous = f"anonymous:{hashlib.sha256(message_id.encode()).hexdigest()[:16]}"
    utm = _utm(fields, page_url)
    builder = _builder(fields, manychat)
    return InboundMessage(
        message_id=message_id,
        channel=Channel.form,
        chat_id=phone or email or user_id or anonymous,
        contact=Contact(name=name, phone=phone, channel_user_id=user_id or email),
        text="\n".join(lines),
        received_at=received_at,
        source=utm.source or "form",
        utm=utm,
        builder=builder,
        promo=promo,
        page_url=page_url[:2000] if page_url else None,
        branch=branch[:200] if branch else None,
    )
