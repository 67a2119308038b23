"""Getting into the panel without passwords: a one-time link (from the bot's ``/panel``, from
``leadflow panel-link``, from ``leadflow up``) → a «Войти» page whose button POSTs the token →
a session cookie. Wall time governs links and sessions (never the fast local clock)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

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


def first_admin(staff: list) -> str | None:
    """Whom `leadflow up`'s link logs in: the config's first owner, else its first senior."""
    for role in ("owner", "senior"):
        found = next((m.id for m in staff if m.role == role and m.active), None)
        if found:
            return found
    return None
