"""Getting into the panel without passwords: a one-time link (from the bot's ``/panel``, from
``leadflow panel-link``, from ``leadflow up``) → a «Войти» page whose button POSTs the token →
a session cookie. Wall time governs links and sessions (never the fast local clock)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote

from leadflow import clock
from leadflow.adapters.store.panel import PanelStore

LOGIN_LINK_TTL = timedelta(minutes=10)
SESSION_TTL = timedelta(days=7)
SESSION_COOKIE = "lf_session"


def login_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/panel/login?t={quote(token)}"


def issue_login_link(panel: PanelStore, staff_id: str, base_url: str) -> str:
    token = panel.issue_login(staff_id, clock.wall_now() + LOGIN_LINK_TTL)
    return login_url(base_url, token)


MINI_APP_MAX_AGE = timedelta(hours=1)


def verify_init_data(init_data: str, bot_token: str, now: datetime) -> dict | None:
    """A Telegram Mini App's ``initData`` checked as Telegram's «Validating data received via the
    Mini App» says: ``hash`` is hex(HMAC-SHA256(data-check-string, key)) where key =
    HMAC-SHA256(bot token, key "WebAppData") and the data-check-string is every other field as
    ``key=value``, sorted by key, joined by "\n". Also fresh (``auth_date`` within MINI_APP_MAX_AGE
    of wall time). Returns the fields (``user`` parsed from its JSON), or None."""
    import json

    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    fields = dict(pairs)
    sent = fields.pop("hash", "")
    if not sent or len(fields) + 1 != len(pairs):  # a field twice: not what Telegram signs
        return None
    check = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    key = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, check.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sent.lower()):
        return None
    try:
        signed_at = datetime.fromtimestamp(int(fields.get("auth_date", "")), UTC)
        user = json.loads(fields.get("user", ""))
    except (ValueError, OverflowError, OSError):
        return None
    if not isinstance(user, dict) or not (now - MINI_APP_MAX_AGE <= signed_at <= now + timedelta(minutes=5)):
        return None
    return {**fields, "user": user}


def first_admin(staff: list) -> str | None:
    """Whom `leadflow up`'s link logs in: the config's first owner, else its first senior."""
    for role in ("owner", "senior"):
        found = next((m.id for m in staff if m.role == role and m.active), None)
        if found:
            return found
    return None
