"""Settings: where things are (tables, queues, endpoints) and the secrets, from the environment.

Read once, lazily, on first use — never at import time, so a cold start pays for nothing it does
not use and tests can set the environment before the first call.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, Field

SECRET_NAMES = [
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "META_APP_SECRET",
    "META_VERIFY_TOKEN",
    "WHATSAPP_TOKEN",
    "INSTAGRAM_TOKEN",
    "VK_CONFIRMATION_CODE",
    "VK_SECRET",
    "VK_TOKEN",
    "FORM_SECRET",
    "CALL_SECRET",
    "BITRIX24_WEBHOOK_URL",
    "BITRIX24_APP_TOKEN",
    "AMOCRM_TOKEN",
    "AMOCRM_WEBHOOK_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_JSON",
    "OPENAI_API_KEY",
    "TRANSCRIBE_API_KEY",
    "MANYCHAT_API_TOKEN",
    "CHATFUEL_API_TOKEN",
    "SMS_API_KEY",
    "SMS_LOGIN",
    "SMS_WEBHOOK_SECRET",
    "YCLIENTS_PARTNER_TOKEN",
    "YCLIENTS_USER_TOKEN",
    "YCLIENTS_WEBHOOK_SECRET",
    "YOOKASSA_SHOP_ID",
    "YOOKASSA_SECRET_KEY",
]


# ЮKassa's notification senders (yookassa.ru/developers/using-api/webhooks, checking the IP address).
YOOKASSA_IPS = (
    "185.71.76.0/27,185.71.77.0/27,77.75.153.0/25,77.75.156.11/32,77.75.156.35/32,"
    "77.75.154.128/25,2a02:5180::/32"
)

# --------------------------------------------------------------------------- settings


class Settings(BaseModel):
    """Where things are (tables, queues, endpoints). Secrets are read through `secret()`."""

    stage: str = "local"
    leads_table: str = "LeadsTable"
    contacts_table: str = "ContactsTable"
    conversation_table: str = "ConversationTable"
    staff_table: str = "StaffTable"
    timers_table: str = "TimersTable"
    inbox_table: str = "InboxTable"
    config_table: str = "ConfigTable"
    bookings_table: str = "BookingsTable"
    stats_table: str = "StatsTable"
    rate_limit_table: str | None = None  # the shared Bitrix24 budget (crm/rate_limit.py); unset: per process
    score_queue_url: str | None = None
    route_queue_url: str | None = None
    secrets_prefix: str | None = Field(default=None, description="SSM path; unset → secrets from env")
    telegram_api_base: str = "https://api.telegram.org"
    meta_graph_base: str = "https://graph.facebook.com/v21.0"
    vk_api_base: str = "https://api.vk.com/method"
    vk_group_id: str | None = Field(default=None, description="the VK community whose callbacks we take")
    whatsapp_phone_number_id: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    transcribe_base_url: str | None = Field(default=None, description="unset: OPENAI_BASE_URL")
    transcribe_model: str = "whisper-1"
    manychat_api_base: str = "https://api.manychat.com"
    chatfuel_api_base: str = "https://api.chatfuel.com"
    chatfuel_bot_id: str | None = Field(default=None, description="the Chatfuel bot replies go through")
    chatfuel_block: str = Field(
        default="leadflow_reply", description="the Chatfuel block that shows {{leadflow_reply}} to the user"
    )
    call_timezone: str = Field(default="Europe/Moscow", description="the Zadarma account's time zone")
    sms_provider: str | None = None
    sms_sender: str | None = None
    sms_api_base: str | None = None
    yclients_api_base: str = "https://api.yclients.com"
    yookassa_api_base: str = "https://api.yookassa.ru"
    payment_webhook_ips: str = Field(
        default=YOOKASSA_IPS,
        description="networks /webhooks/payment takes notifications from, comma-separated; default: ЮKassa's",
    )
    public_base_url: str | None = Field(
        default=None,
        description="the stack's public address: panel login links and booking calendar files (/ics/…) start with it",
    )
    telegram_bot_username: str | None = Field(
        default=None,
        description="the bot's username: staff invites as t.me links (and QR codes) in the panel",
    )
    score_dead_letter_queue_url: str | None = None  # the panel's «Проблемы» page lists and redrives these
    route_dead_letter_queue_url: str | None = None
    amocrm_base_url: str | None = Field(
        default=None, description="the account's address, https://<sub>.amocrm.ru"
    )
    google_sheets_api_base: str = "https://sheets.googleapis.com"
    google_oauth_token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
    max_body_bytes: int = 1_000_000
    config_max_age_s: int = 60
    outbox_only: bool = Field(default=False, description="local stack: record outbound, never call APIs")
    leadflow_platform: str = Field(
        default="aws",
        description="aws | yandex: the cloud, for what its events do not show (Document API limits)",
    )

    @classmethod
    def from_env(cls) -> Settings:
        # An empty value is "not set": the stack passes every optional setting, empty when unused.
        fields = {name: os.environ[name.upper()] for name in cls.model_fields if os.environ.get(name.upper())}
        return cls.model_validate(fields)


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def _ssm_provider() -> Any:
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    return SSMProvider()


_function_env: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "function_env", default=None
)


def env(name: str) -> str | None:
    """A variable of this function's environment. The local stack runs all five functions in one
    process at once, so what differs between them (DLQ_URL) comes from a per-invocation overlay."""
    return (_function_env.get() or {}).get(name) or os.environ.get(name)


@contextlib.contextmanager
def function_environment(values: dict[str, str]) -> Iterator[None]:
    token = _function_env.set(values)
    try:
        yield
    finally:
        _function_env.reset(token)


def secret(name: str) -> str | None:
    """A secret by its stable name (TELEGRAM_BOT_TOKEN, …): env first, then SSM under the prefix.

    SSM values are cached by Powertools for five minutes, so a rotated secret is picked up
    without a redeploy. A missing secret is None: callers fail closed.
    """
    value = os.environ.get(name)
    if value:
        return value
    prefix = settings().secrets_prefix
    if not prefix:
        return None
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        return str(_ssm_provider().get(f"{prefix.rstrip('/')}/{name}", decrypt=True, max_age=300))
    except GetParameterError:
        return None


def reset_caches() -> None:
    """Forget settings and cached config (tests and the local stack change the environment)."""
    settings.cache_clear()
    _ssm_provider.cache_clear()
