"""The business config schema: services, branches, hours, staff, routing rules, SLA, reminders,
messages, CRM and SMS settings — one YAML file per business (``leadflow config check|push``)."""

from __future__ import annotations

import re
import string
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Service(_Section):
    id: str
    name: str
    keywords: list[str] = Field(default_factory=list)
    group: str | None = None
    price: int | str | None = Field(default=None, description="1500, or as said: 'от 1500', '1500-2000'")
    duration_min: int | None = None
    name_en: str | None = Field(default=None, description="the name in replies to English-speaking clients")
    yclients_id: int | None = Field(default=None, description="the service's id in YCLIENTS")


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

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hhmm(cls, value: Any) -> str:
        return hhmm(value)


WeekHours = dict[Weekday, list[TimeRange]]


def hhmm(value: Any) -> str:
    """A time of day as "HH:MM". YAML reads an unquoted 21:00 as the number 1260 (minutes, base 60):
    understood as the time it was meant to be. Anything else that is not HH:MM is refused with the
    value and the form expected — at `config check`, not at the first scheduled run."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = f"{value // 60}:{value % 60:02d}"  # YAML's base-60 reading of an unquoted 21:00, undone
    text = str(value).strip()
    hours, _, minutes = text.partition(":")
    valid = hours.isdigit() and len(hours) <= 2 and minutes.isdigit() and len(minutes) == 2
    # 24:00 is the end of the day; 24:30 or 25:00 is a typo, not a time.
    if not (valid and (int(hours) < 24 or minutes == "00") and int(hours) <= 24 and int(minutes) < 60):
        raise ValueError(f'expected a time as HH:MM (e.g. "21:00"), got {value!r}')
    return f"{int(hours):02d}:{int(minutes):02d}"


ClockTime = Annotated[str, BeforeValidator(hhmm)]


def clock_time(value: str) -> time:
    """A config's "HH:MM" (validated) as a time of day; "24:00" is midnight."""
    hours, minutes = (int(p) for p in value.split(":"))
    return time(hours % 24, minutes)


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
    # How a lead is known to be this branch's (see leadflow.domain.branches):
    phones: list[str] = Field(default_factory=list, description="its lines and WhatsApp numbers")
    accounts: list[str] = Field(default_factory=list, description="'vk:<group id>', 'instagram:<account id>'")
    aliases: list[str] = Field(default_factory=list, description="what clients call it: street, metro, area")
    # What the assistant tells a client who asks where it is (unset: the knowledge section's).
    address: str | None = None
    directions: str | None = Field(default=None, description="how to get there: entrance, floor, landmarks")
    parking: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _known_time_zone(value)

    @field_validator("phones")
    @classmethod
    def _e164(cls, phones: list[str]) -> list[str]:
        return _e164_list(phones, "phones")

    @field_validator("accounts")
    @classmethod
    def _channel_ids(cls, accounts: list[str]) -> list[str]:
        for account in accounts:
            channel, _, account_id = account.partition(":")
            if channel not in ("vk", "instagram") or not account_id.strip():
                raise ValueError(
                    f"accounts: {account!r} should be 'vk:<group id>' or 'instagram:<account id>'"
                )
        return [a.replace(" ", "") for a in accounts]

    @property
    def title(self) -> str:
        return self.name or self.id


class StaffMember(_Section):
    id: str
    name: str
    role: Literal["specialist", "manager", "senior", "owner"] = "specialist"
    skills: list[str] = Field(default_factory=list, description="service ids or groups; empty = any")
    branch: str | None = None
    telegram_chat_id: str | None = None
    bitrix24_user_id: int | None = None
    amocrm_user_id: int | None = None
    shifts: WeekHours | None = Field(default=None, description="unset = the branch's opening hours")
    capacity: int = Field(default=20, ge=0, description="open leads at once; 0 = takes no new leads")
    active: bool = True
    aliases: list[str] = Field(
        default_factory=list,
        description="what clients call them: «Оля», «Олечка» (common short forms are known)",
    )
    days_off: list[date] = Field(default_factory=list, description="vacation, sick days: no bookings")
    breaks: list[TimeRange] = Field(
        default_factory=list, description="daily breaks: no bookings, e.g. 14:00-15:00"
    )
    yclients_id: int | None = Field(default=None, description="the master's staff id in YCLIENTS")

    def crm_user(self, crm: str) -> str | None:
        """Who this person is in the CRM named ``crm``: its user id, or the name a sheet shows."""
        if crm == "bitrix24":
            return str(self.bitrix24_user_id) if self.bitrix24_user_id else None
        if crm == "amocrm":
            return str(self.amocrm_user_id) if self.amocrm_user_id else None
        return self.name if crm == "sheets" else None


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

    @field_validator("channel", "temperature", "intent")
    @classmethod
    def _known_values(cls, values: list[str] | None, info: ValidationInfo) -> list[str] | None:
        """A misspelt value would make the rule silently never fire."""
        from leadflow.domain.models import Channel, Intent, Temperature

        known = {"channel": Channel, "temperature": Temperature, "intent": Intent}[str(info.field_name)]
        for value in values or []:
            if value not in {member.value for member in known}:
                choices = ", ".join(member.value for member in known)
                raise ValueError(f"unknown {info.field_name} {value!r}{_nearest(value, {m.value for m in known})}; "
                                 f"one of: {choices}")  # fmt: skip
        return values


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
    question_min: int = Field(
        default=60, description="a question (a cold lead) waits this long for its answer"
    )
    remind_owner_after_min: int = Field(
        default=0, description="not used (config check warns); kept for old configs"
    )
    escalate_after_min: int = 15
    reassign_after_min: int = 30


class Reminders(_Section):
    before_appointment_h: list[int] = Field(default_factory=lambda: [24, 2])
    nudge_after_days: list[int] = Field(default_factory=lambda: [1, 3])
    nurture_after_days: int = 7
    winback_after_days: int = 14
    quiet_hours: TimeRange = Field(default_factory=lambda: TimeRange(start="21:00", end="09:00"))
    digest_at: ClockTime = "21:00"


class Templates(_Section):
    """The assistant's words. Slots in braces are filled in; every language has the same slots."""

    @model_validator(mode="after")
    def _known_slots(self) -> Templates:
        return _check_slots(self)

    greeting: str = "Здравствуйте{name_part}!"
    booking_confirm: str = "Записываю вас на {service}{when}? Администратор подтвердит время."
    booking_start: str = "Запишем вас на {service}{when}."
    booking_offer: str = "Записать вас?"
    ask_service: str = "Подскажите, на какую услугу вас записать?"
    ask_time: str = "На какой день и время вам удобно?"
    ask_day: str = "На какой день вам удобно?"
    ask_hour: str = "Во сколько вам удобно?"
    time_passed: str = "Сегодня в {time} уже не получится — на какое время вам удобно?"
    ask_phone: str = "Оставьте, пожалуйста, номер телефона для связи."
    ask_branch: str = "В какой филиал вам удобнее: {branches}?"
    or_word: str = "или"
    price_line: str = "{service} — {facts}."
    services_total: str = "Вместе — {facts}."
    ask_priced_service: str = "Подскажите, какая услуга вас интересует — назову цену."
    address: str = "Наш адрес: {address}."
    addresses: str = "Наши адреса: {addresses}."
    hours: str = "Мы работаем: {hours}."
    hours_day: str = "{day} работаем {hours}."
    closed_day: str = "{day} у нас выходной."
    question_ack: str = "Уточню у администратора и вернусь с ответом."
    emoji_only: str = "Чем можем помочь?"
    media_ack: str = "Спасибо! Голосовые и вложения мы посмотрим, администратор скоро ответит."
    voice_unheard: str = (
        "Спасибо за голосовое — мы передали его администратору. Если удобно, напишите, пожалуйста, "
        "коротко текстом, что вас интересует: так мы ответим быстрее."
    )
    not_target: str = "Спасибо за сообщение."
    privacy: str = "Обработка данных: {url}"
    off_hours: str = "Сейчас мы закрыты, администратор перезвонит вам утром."
    reminder: str = (
        "Напоминаем: вы записаны на {service} {when}. Подтвердите, пожалуйста: ответьте «да» или «нет»."
    )
    reminder_sms: str = "Напоминаем: {service} {when}. Ответьте ДА или НЕТ"
    nudge: str = "Здравствуйте! Подобрать вам удобное время{service_part}? Напишите день и время — администратор подтвердит."
    winback: str = "Жаль, что не получилось прийти. Давайте подберём другое время{service_part}?"
    confirmed: str = "Спасибо, ждём вас!"
    cancelled: str = "Поняли, запись отменим. Если захотите перенести — напишите удобное время."
    reschedule: str = "Хорошо, администратор свяжется с вами, чтобы подобрать новое время."
    missed_call: str = (
        "Здравствуйте! Мы пропустили ваш звонок и скоро перезвоним. Если удобнее — напишите сюда."
    )
    slots_offer: str = "Есть окна {day}: {times}. Какое удобно?"
    slots_other_day: str = "{wished} свободных окон нет. Есть {day}: {times}. Какое удобно?"
    slots_none: str = "Свободных окон в ближайшие дни нет — администратор подберёт время."
    slot_taken: str = "Это время только что заняли."
    booked: str = "Готово! Записали вас на {service} {when}{master_part}."
    booked_master: str = ", мастер — {master}"
    booked_price: str = "Стоимость — {price}."
    booked_address: str = "Адрес: {address}."
    booked_payment: str = "Предоплата: {url}"
    booked_calendar: str = "Добавить в календарь: {url}"
    booking_cancelled: str = (
        "Ваша запись на {service} {when} отменена. Если захотите прийти в другое время — напишите, подберём."
    )


def _slots(text: str) -> set[str]:
    """The {slots} a text fills in; ValueError for braces that do not pair."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _check_slots(templates: Templates) -> Templates:
    """Every text uses only the slots its default has: a typo would fail every reply at run time."""
    for name, field in type(templates).model_fields.items():
        value = getattr(templates, name)
        if not isinstance(value, str) or not isinstance(field.default, str):
            continue
        allowed = _slots(field.default)
        try:
            used = _slots(value)
        except ValueError:
            raise ValueError(
                f"{name}: braces do not pair in {value!r}; write {{{{ and }}}} for a brace itself"
            ) from None
        unknown = sorted(used - allowed)
        if unknown:
            can = ", ".join(f"{{{slot}}}" for slot in sorted(allowed)) or "no slots"
            raise ValueError(f"{name}: unknown slot {{{unknown[0]}}}; this text can use {can}")
    return templates


class EnglishTemplates(Templates):
    """The same words for clients who write in English."""

    greeting: str = "Hello{name_part}!"
    booking_confirm: str = "Shall I book you in for {service}{when}? An administrator will confirm the time."
    booking_start: str = "We will be glad to book you in for {service}{when}."
    booking_offer: str = "Shall I book you in?"
    ask_service: str = "Which service would you like to book?"
    ask_time: str = "What day and time suit you?"
    ask_day: str = "What day suits you?"
    ask_hour: str = "What time suits you?"
    time_passed: str = "Today at {time} has already passed — what time suits you?"
    ask_phone: str = "Please leave a phone number so we can reach you."
    ask_branch: str = "Which of our places suits you better: {branches}?"
    or_word: str = "or"
    price_line: str = "{service}: {facts}."
    services_total: str = "Together: {facts}."
    ask_priced_service: str = "Which service are you interested in? I will tell you the price."
    address: str = "Our address: {address}."
    addresses: str = "Our addresses: {addresses}."
    hours: str = "Opening hours: {hours}."
    hours_day: str = "{day} we are open {hours}."
    closed_day: str = "{day} we are closed."
    question_ack: str = "I will check with the administrator and get back to you."
    emoji_only: str = "How can we help you?"
    media_ack: str = (
        "Thank you! We will look at your voice message or attachment; an administrator will answer soon."
    )
    voice_unheard: str = (
        "Thank you for the voice message — we have passed it to the administrator. If you can, please "
        "write briefly what you are interested in: that way we answer faster."
    )
    not_target: str = "Thank you for your message."
    privacy: str = "Personal data processing: {url}"
    off_hours: str = "We are closed now; an administrator will call you back in the morning."
    reminder: str = "A reminder: you are booked for {service} {when}. Please confirm: answer “yes” or “no”."
    reminder_sms: str = "Reminder: {service} {when}. Reply YES or NO"
    nudge: str = "Hello! Shall we find a time that suits you{service_part}? Write a day and time — an administrator will confirm."
    winback: str = "Sorry it did not work out. Shall we find another time{service_part}?"
    confirmed: str = "Thank you, see you!"
    cancelled: str = "Got it, we will cancel the booking. If you want another time, just write it here."
    reschedule: str = "Fine, an administrator will contact you to find a new time."
    missed_call: str = "Hello! We missed your call and will call you back soon. You can also write here."
    slots_offer: str = "We have free times {day}: {times}. Which suits you?"
    slots_other_day: str = "There are no free times {wished}. We have {day}: {times}. Which suits you?"
    slots_none: str = "There are no free times in the coming days; an administrator will find one for you."
    slot_taken: str = "That time has just been taken."
    booked: str = "Done! You are booked for {service} {when}{master_part}."
    booked_master: str = " with {master}"
    booked_price: str = "Price: {price}."
    booked_address: str = "Address: {address}."
    booked_payment: str = "Prepayment: {url}"
    booked_calendar: str = "Add to calendar: {url}"
    booking_cancelled: str = (
        "Your booking for {service} {when} has been cancelled. If you want another time, just write here."
    )


class Messages(Templates):
    whatsapp_template: str | None = Field(
        default=None, description="approved template name for messages outside WhatsApp's 24-hour window"
    )
    en: EnglishTemplates = Field(
        default_factory=EnglishTemplates, description="replies to English-speaking clients"
    )

    def in_language(self, language: str | None) -> Templates:
        return self.en if language == "en" else self


class QuestionAnswer(_Section):
    """One of the owner's answers: the ways clients ask it, and what the assistant says."""

    questions: list[str] = Field(min_length=1, description="phrasings: «есть подарочные сертификаты»")
    answer: str
    answer_en: str | None = None


class _Facts(_Section):
    address: str | None = Field(
        default=None, description="a business with one place (branches have their own)"
    )
    directions: str | None = None
    parking: str | None = None
    payment: str | None = Field(default=None, description="«Принимаем наличные, карты и СБП.»")
    what_to_bring: str | None = None
    cancellation: str | None = Field(default=None, description="the cancellation policy, as told to clients")


class Knowledge(_Facts):
    """What the assistant may tell a client, and nothing else: the owner's facts and answers.
    Opening hours come from `hours`/branches, prices and durations from `services`."""

    qa: list[QuestionAnswer] = Field(default_factory=list)
    en: _Facts = Field(default_factory=_Facts, description="the same facts for English-speaking clients")

    def fact(self, name: str, language: str | None = None) -> str | None:
        english = getattr(self.en, name) if language == "en" else None
        return english or getattr(self, name)


class Qualify(_Section):
    required: list[Literal["service", "time", "phone"]] = ["service", "time"]
    phone_when_missing: bool = Field(default=True, description="ask for a phone when the channel gave none")
    route_after_min: int = 10
    llm_budget_s: float = 2.5


CrmKind = Literal["bitrix24", "amocrm", "sheets", "builtin"]
# Each CRM's documented request limit as (requests per second, burst) for the shared budget
# (adapters/rate_limit.py: any window of L seconds holds at most burst + rate * L requests).
# Bitrix24: 2/s with a burst of 50 (Enterprise: 5/s and 250). amoCRM: "not more than 7 requests
# per second" — 7/s with no burst keeps every calendar second at 7. Google Sheets: 60 read and 60
# write requests a minute per user (the service account is one user): 0.9/s with a burst of 5 keeps
# any minute at 59 requests of both kinds together.
CRM_REQUEST_BUDGETS: dict[str, tuple[float, int]] = {
    "bitrix24": (2.0, 50),
    "amocrm": (7.0, 1),
    "sheets": (0.9, 5),
}
_SPREADSHEET_URL = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")
_SPREADSHEET_ID = re.compile(r"[A-Za-z0-9_-]{20,100}")


class Sheet(_Section):
    """A Google sheet leads are written to: the spreadsheet (its id, or its address as copied from
    the browser) and the tab's name. The owner shares it with the service account's e-mail."""

    spreadsheet_id: str
    sheet: str = "Лиды"

    @field_validator("spreadsheet_id", mode="before")
    @classmethod
    def _id_from_address(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        found = _SPREADSHEET_URL.search(text)
        if found:
            text = found.group(1)
        if not _SPREADSHEET_ID.fullmatch(text):
            raise ValueError(
                f"{value!r} is not a spreadsheet id: copy the sheet's address from the browser "
                "(https://docs.google.com/spreadsheets/d/<id>/edit) or the id in it"
            )
        return text

    @field_validator("sheet")
    @classmethod
    def _tab_name(cls, value: str) -> str:
        name = value.strip()
        if not name or len(name) > 100 or any(ch in name for ch in "[]*?/\\:"):
            raise ValueError(f"sheet: {value!r} is not a tab name (1-100 characters, none of [ ] * ? / \\ :)")
        return name


class AmoCrmConfig(_Section):
    """amoCRM: where new leads go and which stage each of our statuses is in the client's pipeline."""

    entry: Literal["complex", "unsorted"] = Field(
        default="complex", description="complex: a lead with its contact; unsorted: «Неразобранное» (forms)"
    )
    pipeline_id: int | None = Field(default=None, description="unset: the account's main pipeline")
    status_id: int | None = Field(default=None, description="the stage new leads start in; unset: the first")
    source_name: str = Field(default="leadflow", description="what «Неразобранное» shows as the source")
    # Our status → the pipeline's stage id. 142 (won) and 143 (lost) are the same in every pipeline;
    # the other stages are the account's own (Settings → Pipelines, or GET /api/v4/leads/pipelines).
    statuses: dict[str, int] = Field(default_factory=dict)
    utm_fields: bool = Field(default=True, description="write UTM_* tracking fields (the account has them)")
    task_type_id: int = Field(default=1, description="the call-back task's type: 1 = «Связаться»")

    @field_validator("statuses")
    @classmethod
    def _our_statuses(cls, statuses: dict[str, int]) -> dict[str, int]:
        from leadflow.domain.models import LeadStatus

        known = {str(s) for s in LeadStatus}
        for name in statuses:
            if name not in known:
                raise ValueError(
                    f"statuses: {name!r} is not a lead status{_nearest(name, known)} (one of {', '.join(sorted(known))})"
                )
        return statuses

    def stage_of(self, status: str) -> int | None:
        return self.statuses.get(status, AMOCRM_CLOSING_STAGES.get(status))

    def status_of(self, stage_id: int) -> str | None:
        """Our status for an amoCRM stage (a person moved the lead there), or None."""
        mapped = {name for name, stage in self.statuses.items() if stage == stage_id}
        furthest = next((name for name in _FURTHEST_FIRST if name in mapped), None)
        return furthest or {142: "visited", 143: "lost"}.get(stage_id)


# Stages every amoCRM pipeline has: 142 «Успешно реализовано», 143 «Закрыто и не реализовано».
AMOCRM_CLOSING_STAGES = {"visited": 142, "no_show": 143, "cancelled": 143, "lost": 143, "not_target": 143}
# When several of our statuses share a stage, a CRM event means the one furthest along.
_FURTHEST_FIRST = [
    "visited", "lost", "no_show", "cancelled", "not_target", "confirmed", "booked", "accepted",
    "assigned", "qualifying", "new",
]  # fmt: skip


class Crm(_Section):
    kind: CrmKind | None = Field(
        default=None, description="unset: Bitrix24 when BITRIX24_WEBHOOK_URL is set, else built-in"
    )
    # Bitrix24
    mode: Literal["auto", "classic", "simple"] = "auto"
    booking_field: str | None = Field(
        default=None,
        description="the deal's/lead's date-time field that holds the visit, e.g. UF_CRM_VISIT_AT: "
        "a booking made in Bitrix24 gets reminders",
    )
    tags_field: str | None = Field(default=None, description="UF field for tags, e.g. UF_CRM_TAGS")
    source_ids: dict[str, str] = Field(default_factory=dict, description="channel → SOURCE_ID")
    push_not_target: bool = False
    # The CRM's request limit (CRM_REQUEST_BUDGETS when unset): Bitrix24 Enterprise says 5 and 250.
    requests_per_s: float | None = Field(default=None, gt=0)
    burst: int | None = Field(default=None, ge=1)
    amocrm: AmoCrmConfig = Field(default_factory=AmoCrmConfig)
    sheet: Sheet | None = Field(default=None, description="kind: sheets — the sheet that is the CRM")
    mirror_sheet: Sheet | None = Field(default=None, description="Bitrix24/amoCRM leads also go here")

    @model_validator(mode="after")
    def _sheets_named(self) -> Crm:
        if self.kind == "sheets" and self.sheet is None:
            raise ValueError("kind: sheets needs sheet: {spreadsheet_id: …, sheet: Лиды}")
        if self.mirror_sheet is not None and self.kind in ("sheets", "builtin"):
            raise ValueError(
                f"mirror_sheet copies Bitrix24's or amoCRM's leads into a sheet; with kind: {self.kind} "
                "there is nothing to mirror (for a sheet as the CRM: kind: sheets with sheet: …)"
            )
        return self

    def request_budget(self, kind: str) -> tuple[float, int]:
        rate, burst = CRM_REQUEST_BUDGETS[kind]
        return self.requests_per_s or rate, self.burst or burst


class SmsSettings(_Section):
    # Not used (config check warns): SMS_PROVIDER and SMS_SENDER are the stack's. Kept for old configs.
    provider: Literal["smsru", "smsc", "aws"] | None = None
    sender: str | None = None
    # Against SMS pumping (a form flooded with numbers that bill per message): automatic texts go
    # only to these countries, a few per number a day, and stop for the hour past a budget.
    countries: list[str] = Field(default_factory=lambda: ["RU"], description="ISO codes SMS may go to")
    per_phone_per_day: int = Field(default=3, ge=0, description="automatic SMS to one number a day")
    per_hour: int = Field(default=60, ge=0, description="automatic SMS of the whole business an hour")

    @field_validator("countries")
    @classmethod
    def _iso_codes(cls, codes: list[str]) -> list[str]:
        for code in codes:
            if not (len(code) == 2 and code.isalpha()):
                raise ValueError(f"countries: {code!r} is not a two-letter country code (RU, KZ, BY, …)")
        return [c.upper() for c in codes]


class Retention(_Section):
    """Personal data has an end (152-FZ): message texts are deleted, and leads keep only their numbers."""

    personal_data_days: int = Field(default=365, ge=30)


class Replies(_Section):
    """Against flooding: automatic answers per chat (every message is still stored and shown)."""

    per_chat: int = Field(default=5, ge=1)
    window_min: int = Field(default=10, ge=1)


class PanelSettings(_Section):
    """The owner's panel: the business owner edits the rules; seniors listed here may too."""

    rule_editors: list[str] = Field(
        default_factory=list, description="staff ids of seniors who may edit rules"
    )


class YclientsSettings(_Section):
    company_id: int = Field(description="the branch's (company's) id in YCLIENTS")


class Booking(_Section):
    """Real booking: the assistant offers free slots and books the one the client picks."""

    enabled: bool = Field(default=False, description="off: the assistant repeats the wish, staff book")
    system: Literal["builtin", "yclients"] = "builtin"
    step_min: int = Field(default=30, ge=5, le=240, description="slots start every step_min minutes")
    gap_min: int = Field(default=0, ge=0, le=240, description="free minutes after each visit")
    hold_min: int = Field(default=15, ge=0, le=24 * 60, description="an offered slot is kept this long")
    offer_count: int = Field(default=3, ge=1, le=6)
    search_days: int = Field(default=14, ge=1, le=60, description="how far ahead the nearest days are sought")
    lead_time_min: int = Field(default=60, ge=0, description="no slot sooner than this from now")
    show_master: bool = Field(default=False, description="name the master next to every offered time")
    prepayment_url: str | None = Field(
        default=None,
        description="a payment page URL template: {amount}, {lead_id} filled in (ЮKassa, Tinkoff, СБП)",
    )
    yclients: YclientsSettings | None = None

    @model_validator(mode="after")
    def _system_configured(self) -> Booking:
        if self.system == "yclients" and self.yclients is None:
            raise ValueError("booking.system is yclients: set booking.yclients.company_id")
        return self


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
    knowledge: Knowledge = Field(default_factory=Knowledge)
    qualify: Qualify = Field(default_factory=Qualify)
    crm: Crm = Field(default_factory=Crm)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    replies: Replies = Field(default_factory=Replies)
    panel: PanelSettings = Field(default_factory=PanelSettings)
    booking: Booking = Field(default_factory=Booking)
    retention: Retention = Field(default_factory=Retention)
    vip_phones: list[str] = Field(default_factory=list)
    open_lead_window_days: int = 14
    privacy_policy_url: str | None = Field(
        default=None,
        description="152-FZ: the first answer to a new client and every form confirmation link to it",
    )

    @field_validator("vip_phones")
    @classmethod
    def _e164(cls, phones: list[str]) -> list[str]:
        return _e164_list(phones, "vip_phones")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _known_time_zone(value)

    @model_validator(mode="after")
    def _references_exist(self) -> BusinessConfig:
        problems = _reference_problems(self)
        if problems:
            raise BadReferences(problems)
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def service(self, service_id: str | None) -> Service | None:
        return next((s for s in self.services if s.id == service_id), None)

    def staff_member(self, staff_id: str | None) -> StaffMember | None:
        return next((s for s in self.staff if s.id == staff_id), None)

    def branch(self, branch_id: str | None) -> Branch | None:
        return next((b for b in self.branches if b.id == branch_id), None)


Loc = tuple[str | int, ...]


class BadReferences(ValueError):
    """Names that point at nothing, each with where it is in the config (so the line can be named)."""

    def __init__(self, problems: list[tuple[Loc, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{dotted(loc)}: {msg}" for loc, msg in problems))


def dotted(loc: tuple[Any, ...]) -> str:
    """Where in the config, as a person counts: ("staff", 3, "skills", 0) → "staff #4.skills #1"."""
    shown = ""
    for part in loc:
        shown += f" #{part + 1}" if isinstance(part, int) else f"{'.' if shown else ''}{part}"
    return shown or "(top)"


def _known_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Moscow)") from None
    return value


def _e164_list(phones: list[str], field: str) -> list[str]:
    """As leads store them (+7…), whatever spelling the owner typed («8 913 …»)."""
    from leadflow.domain.phones import to_e164

    result = []
    for raw in phones:
        number = to_e164(raw)
        if number is None:
            raise ValueError(f"{field}: {raw!r} is not a phone number")
        result.append(number)
    return result


def _duplicates(section: str, ids: list[str]) -> list[tuple[Loc, str]]:
    seen: set[str] = set()
    problems: list[tuple[Loc, str]] = []
    for i, item_id in enumerate(ids):
        if item_id in seen:
            problems.append(((section, i, "id"), f"duplicate id {item_id!r}"))
        seen.add(item_id)
    return problems


def _reference_problems(cfg: BusinessConfig) -> list[tuple[Loc, str]]:
    """Every skill, branch, assign_to and rule match that names nothing in the config."""
    service_ids = {s.id for s in cfg.services}
    groups = {s.group for s in cfg.services if s.group}
    branch_ids = {b.id for b in cfg.branches}
    staff_ids = {s.id for s in cfg.staff}
    roles = {"specialist", "manager", "senior", "owner"}
    problems = _duplicates("services", [s.id for s in cfg.services])
    problems += _duplicates("staff", [s.id for s in cfg.staff])
    problems += _duplicates("branches", [b.id for b in cfg.branches])
    problems += _shared_branch_keys(cfg)
    for i, member in enumerate(cfg.staff):
        for j, skill in enumerate(member.skills):
            if skill not in service_ids | groups:
                problems.append(
                    (
                        ("staff", i, "skills", j),
                        f"staff {member.id}: unknown skill {skill!r}{_nearest(skill, service_ids | groups)}",
                    )
                )
        if member.branch and member.branch not in branch_ids:
            problems.append(
                (
                    ("staff", i, "branch"),
                    f"staff {member.id}: unknown branch {member.branch!r}{_nearest(member.branch, branch_ids)}",
                )
            )
    for i, rule in enumerate(cfg.routing):
        for j, target in enumerate(rule.assign_to or []):
            if target not in staff_ids | roles | service_ids | groups:
                problems.append(
                    (
                        ("routing", i, "assign_to", j),
                        f"routing rule {rule.name!r}: unknown assign_to {target!r}"
                        + _nearest(target, staff_ids | roles | service_ids | groups),
                    )
                )
        for field, known in (("service", service_ids | groups), ("branch", branch_ids)):
            for j, name in enumerate(getattr(rule.match, field) or []):
                if name not in known:
                    where: Loc = ("routing", i, "match", field, j)
                    problems.append(
                        (
                            where,
                            f"routing rule {rule.name!r}: match on unknown {field} {name!r}{_nearest(name, known)}",
                        )
                    )
    return problems


def _nearest(name: str, known: set[str]) -> str:
    """(did you mean 'hair_coloring'?) — for a name one typo away from a known one."""
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _shared_branch_keys(cfg: BusinessConfig) -> list[tuple[Loc, str]]:
    """A number, account or alias can point at one branch only."""
    owner: dict[tuple[str, str], str] = {}
    problems: list[tuple[Loc, str]] = []
    for i, branch in enumerate(cfg.branches):
        for field in ("phones", "accounts", "aliases"):
            for j, value in enumerate(getattr(branch, field)):
                key = (field, value.casefold())
                other = owner.setdefault(key, branch.id)
                if other != branch.id:
                    problems.append((("branches", i, field, j), f"{value!r} is already branch {other!r}'s"))
    return problems


class ConfigError(ValueError):
    """A business config that does not validate; the message names the line where it can."""


def parse_business_config(text: str, source: str = "config") -> BusinessConfig:
    import yaml  # here, not at the top: ingest never parses a config and should not load it

    try:
        data = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: not valid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with at least 'timezone' and 'services'")
    try:
        return BusinessConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for loc, msg in validation_problems(exc):
            line = _line_of(data, loc)
            at = f" (line {line})" if line else ""
            lines.append(f"{source}: {dotted(loc)}{at}: {msg}")
        raise ConfigError("\n".join(lines)) from None


def validation_problems(exc: ValidationError) -> list[tuple[Loc, str]]:
    """Each problem of a config that did not validate, with where it is (a reference to nothing
    is located at the name itself, not at the top)."""
    problems: list[tuple[Loc, str]] = []
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        located = cause.problems if isinstance(cause, BadReferences) else [(error["loc"], error["msg"])]
        problems += [(tuple(loc), msg.removeprefix("Value error, ")) for loc, msg in located]
    return problems


def locate(text: str, loc: Loc) -> int | None:
    """1-based line of a config location (``("staff", 2, "branch")``) in the YAML text."""
    import yaml

    return _line_of(yaml.compose(text), loc)


def _line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at a pydantic error location (the nearest existing parent)."""
    import yaml

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
