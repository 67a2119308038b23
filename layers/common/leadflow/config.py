"""Settings (environment + secrets) and the business config schema.

Settings are read once, lazily, on first use — never at import time, so a cold start pays
for nothing it does not use and tests can set the environment before the first call.
"""

from __future__ import annotations

import functools
import os
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    "OPENAI_API_KEY",
    "SMS_API_KEY",
    "SMS_LOGIN",
]


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
    score_queue_url: str | None = None
    route_queue_url: str | None = None
    secrets_prefix: str | None = Field(default=None, description="SSM path; unset → secrets from env")
    telegram_api_base: str = "https://api.telegram.org"
    meta_graph_base: str = "https://graph.facebook.com/v21.0"
    vk_api_base: str = "https://api.vk.com/method"
    whatsapp_phone_number_id: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    sms_provider: str | None = None
    sms_sender: str | None = None
    sms_api_base: str | None = None
    max_body_bytes: int = 1_000_000
    config_max_age_s: int = 60
    outbox_only: bool = Field(default=False, description="local stack: record outbound, never call APIs")

    @classmethod
    def from_env(cls) -> Settings:
        fields = {name: os.environ[name.upper()] for name in cls.model_fields if name.upper() in os.environ}
        return cls.model_validate(fields)


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def _ssm_provider() -> Any:
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    return SSMProvider()


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


# --------------------------------------------------------------------------- business config


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Service(_Section):
    id: str
    name: str
    keywords: list[str] = Field(default_factory=list)
    group: str | None = None
    price: int | str | None = None
    duration_min: int | None = None


class TimeRange(_Section):
    """ "10:00-20:00"; an end at or before the start runs past midnight."""

    start: str
    end: str

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            start, sep, end = value.partition("-")
            if not sep:
                raise ValueError(f"expected 'HH:MM-HH:MM', got {value!r}")
            return {"start": start.strip(), "end": end.strip()}
        return value

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        hours, _, minutes = value.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and int(hours) <= 24 and int(minutes) < 60):
            raise ValueError(f"expected HH:MM, got {value!r}")
        return f"{int(hours):02d}:{int(minutes):02d}"


WeekHours = dict[Weekday, list[TimeRange]]


def _default_hours() -> WeekHours:
    return {day: [TimeRange(start="10:00", end="20:00")] for day in WEEKDAYS}


class Branch(_Section):
    id: str
    name: str | None = None
    timezone: str | None = None
    hours: WeekHours | None = None
    closed_on_public_holidays: bool = False
    days_off: list[date] = Field(default_factory=list)
    extra_working_days: list[date] = Field(default_factory=list, description="transferred working days")


class StaffMember(_Section):
    id: str
    name: str
    role: Literal["specialist", "manager", "senior"] = "specialist"
    skills: list[str] = Field(default_factory=list, description="service ids or groups; empty = any")
    branch: str | None = None
    telegram_chat_id: str | None = None
    bitrix24_user_id: int | None = None
    shifts: WeekHours | None = Field(default=None, description="unset = the branch's opening hours")
    capacity: int = 20
    active: bool = True


class RuleMatch(_Section):
    channel: list[str] | None = None
    source: list[str] | None = None
    service: list[str] | None = None
    utm_source: list[str] | None = None
    utm_campaign: list[str] | None = None
    branch: list[str] | None = None
    temperature: list[str] | None = None
    intent: list[str] | None = None
    repeat_client: bool | None = None
    vip: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _scalars_to_lists(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value


class RoutingRule(_Section):
    name: str
    match: RuleMatch = Field(default_factory=RuleMatch)
    assign_to: list[str] | None = Field(
        default=None, description="staff ids, roles or skills; unset = specialists with the service's skill"
    )
    tags: list[str] = Field(default_factory=list)
    priority: Literal["normal", "high"] | None = None


class Sla(_Section):
    hot_min: int = 15
    warm_min: int = 60
    cold_min: int = 24 * 60
    remind_owner_after_min: int = 0
    escalate_after_min: int = 15
    reassign_after_min: int = 30


class Reminders(_Section):
    before_appointment_h: list[int] = Field(default_factory=lambda: [24, 2])
    nudge_after_days: list[int] = Field(default_factory=lambda: [1, 3])
    nurture_after_days: int = 7
    winback_after_days: int = 14
    quiet_hours: TimeRange = Field(default_factory=lambda: TimeRange(start="21:00", end="09:00"))
    digest_at: str = "21:00"


class Messages(_Section):
    greeting: str = "Здравствуйте{name_part}!"
    booking_confirm: str = "Записываю вас на {service}{when}? Администратор подтвердит время."
    ask_service: str = "Подскажите, на какую услугу вас записать?"
    ask_time: str = "На какой день и время вам удобно?"
    ask_phone: str = "Оставьте, пожалуйста, номер телефона для связи."
    question_ack: str = "Сейчас уточню и отвечу вам."
    media_ack: str = "Спасибо! Голосовые и вложения мы посмотрим, администратор скоро ответит."
    not_target: str = "Спасибо за сообщение."
    off_hours: str = "Сейчас мы закрыты, администратор перезвонит вам утром."
    reminder: str = (
        "Напоминаем: вы записаны на {service} {when}. Подтвердите, пожалуйста: ответьте «да» или «нет»."
    )
    nudge: str = "Здравствуйте! Подобрать вам удобное время{service_part}? Напишите день и время — администратор подтвердит."
    winback: str = "Жаль, что не получилось прийти. Давайте подберём другое время{service_part}?"
    confirmed: str = "Спасибо, ждём вас!"
    cancelled: str = "Поняли, запись отменим. Если захотите перенести — напишите удобное время."
    reschedule: str = "Хорошо, администратор свяжется с вами, чтобы подобрать новое время."
    whatsapp_template: str | None = Field(
        default=None, description="approved template name for messages outside WhatsApp's 24-hour window"
    )
    missed_call: str = (
        "Здравствуйте! Мы пропустили ваш звонок и скоро перезвоним. Если удобнее — напишите сюда."
    )


class Qualify(_Section):
    required: list[Literal["service", "time", "phone"]] = ["service", "time"]
    phone_when_missing: bool = Field(default=True, description="ask for a phone when the channel gave none")
    route_after_min: int = 10
    llm_budget_s: float = 2.5


class Crm(_Section):
    mode: Literal["auto", "classic", "simple"] = "auto"
    tags_field: str | None = Field(default=None, description="UF field for tags, e.g. UF_CRM_TAGS")
    push_not_target: bool = False
    source_ids: dict[str, str] = Field(default_factory=dict, description="channel → SOURCE_ID")


class SmsSettings(_Section):
    provider: Literal["smsru", "smsc", "aws"] | None = None
    sender: str | None = None


class BusinessConfig(_Section):
    name: str = "leadflow"
    timezone: str
    services: list[Service]
    branches: list[Branch] = Field(default_factory=list)
    hours: WeekHours = Field(default_factory=lambda: _default_hours())
    staff: list[StaffMember] = Field(default_factory=list)
    routing: list[RoutingRule] = Field(default_factory=list)
    sla: Sla = Field(default_factory=Sla)
    reminders: Reminders = Field(default_factory=Reminders)
    messages: Messages = Field(default_factory=Messages)
    qualify: Qualify = Field(default_factory=Qualify)
    crm: Crm = Field(default_factory=Crm)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    vip_phones: list[str] = Field(default_factory=list)
    open_lead_window_days: int = 14

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Moscow)"
            ) from None
        return value

    @model_validator(mode="after")
    def _references_exist(self) -> BusinessConfig:
        service_ids = {s.id for s in self.services}
        groups = {s.group for s in self.services if s.group}
        branch_ids = {b.id for b in self.branches}
        staff_ids = {s.id for s in self.staff}
        if len(service_ids) != len(self.services):
            raise ValueError("services: ids must be unique")
        if len(staff_ids) != len(self.staff):
            raise ValueError("staff: ids must be unique")
        for member in self.staff:
            unknown = set(member.skills) - service_ids - groups
            if unknown:
                raise ValueError(f"staff {member.id}: unknown skills {sorted(unknown)}")
            if member.branch and member.branch not in branch_ids:
                raise ValueError(f"staff {member.id}: unknown branch {member.branch!r}")
        roles = {"specialist", "manager", "senior"}
        for rule in self.routing:
            for target in rule.assign_to or []:
                if target not in staff_ids | roles | service_ids | groups:
                    raise ValueError(f"routing rule {rule.name!r}: unknown assign_to {target!r}")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def service(self, service_id: str | None) -> Service | None:
        return next((s for s in self.services if s.id == service_id), None)

    def staff_member(self, staff_id: str | None) -> StaffMember | None:
        return next((s for s in self.staff if s.id == staff_id), None)


class ConfigError(ValueError):
    """A business config that does not validate; the message names the line where it can."""


def parse_business_config(text: str, source: str = "config") -> BusinessConfig:
    try:
        data = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with at least 'timezone' and 'services'")
    try:
        return BusinessConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = error["loc"]
            line = _line_of(data, loc)
            where = ".".join(str(p) for p in loc) or "(top)"
            at = f" (line {line})" if line else ""
            lines.append(f"{source}: {where}{at}: {error['msg']}")
        raise ConfigError("\n".join(lines)) from None


def _line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at a pydantic error location (the nearest existing parent)."""
    found = node
    for part in loc:
        if isinstance(found, yaml.MappingNode):
            nxt = next((v for k, v in found.value if k.value == str(part)), None)
        elif isinstance(found, yaml.SequenceNode) and isinstance(part, int) and part < len(found.value):
            nxt = found.value[part]
        else:
            nxt = None
        if nxt is None:
            break
        found = nxt
    return found.start_mark.line + 1 if found is not None else None


def load_business_config(path: str | Path) -> BusinessConfig:
    path = Path(path)
    return parse_business_config(path.read_text(encoding="utf-8"), source=str(path))
