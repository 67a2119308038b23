"""Правила as forms: one form per config section (routing rules, staff, branches and hours, SLA,
reminders, message texts), every field named by its config path (``staff.2.capacity``).

A POST rebuilds the draft from the config in force plus the fields that changed (so untouched
values keep their YAML, comments included), validates it as ``leadflow config check`` does, and
puts each problem, in Russian, next to the field its location names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from leadflow.business import (
    WEEKDAYS,
    BusinessConfig,
    Loc,
    Messages,
    Reminders,
    Sla,
    dotted,
    validation_problems,
)

SECTIONS = {
    "routing": "Правила распределения",
    "staff": "Сотрудники",
    "branches": "Филиалы и часы работы",
    "sla": "Сроки ответа (SLA)",
    "reminders": "Напоминания",
    "messages": "Тексты сообщений",
}
DAY_LABEL = dict(zip(WEEKDAYS, ("Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс"), strict=True))
ROLES = [("specialist", "специалист"), ("manager", "менеджер"), ("senior", "старший"), ("owner", "владелец")]
TRISTATE = [("", "неважно"), ("yes", "да"), ("no", "нет")]
PRIORITIES = [("", "обычный"), ("high", "высокий")]
MATCH_FIELDS = [
    ("channel", "Каналы", "telegram, whatsapp, instagram, vk, form, call, sms"),
    ("service", "Услуги или группы", "id услуг или групп через запятую"),
    ("branch", "Филиалы", "id филиалов"),
    ("temperature", "Температура", "hot, warm, cold"),
    ("intent", "Намерение", "booking, question, not_target"),
    ("source", "Источник", ""),
    ("utm_source", "UTM source", ""),
    ("utm_campaign", "UTM-кампании", ""),
]
SLA_FIELDS = [
    ("hot_min", "Горячий лид, минут"), ("warm_min", "Тёплый лид, минут"), ("cold_min", "Холодный лид, минут"),
    ("question_min", "Вопрос, минут"), ("escalate_after_min", "Эскалация старшему через, минут"),
    ("reassign_after_min", "Передать другому через, минут"),
]  # fmt: skip
REMINDER_FIELDS = [
    ("before_appointment_h", "Напомнить о визите за, часов", "ints", "через запятую: 24, 2"),
    ("nudge_after_days", "Напомнить незаписавшимся через, дней", "ints", "через запятую: 1, 3"),
    ("nurture_after_days", "Передать в «прогрев» через, дней", "int", ""),
    ("winback_after_days", "Вернуть не пришедших через, дней", "int", ""),
    ("quiet_hours", "Тихие часы (не писать клиентам)", "text", "например 21:00-09:00"),
    ("digest_at", "Ежедневная сводка в", "text", "ЧЧ:ММ"),
]


@dataclass
class FormField:
    name: str  # the config path, which is also the form field's name
    label: str
    kind: str  # text | number | list | check | select | textarea | day (of a week) | note (a week's heading)
    value: Any
    choices: list[tuple[str, str]] = field(default_factory=list)
    hint: str = ""
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Group:
    key: str  # "staff.2": problems located at the row itself are shown on the row
    title: str
    fields: list[FormField]
    new: bool = False
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- values as typed


def _items(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _list_text(value: Any) -> str:
    return ", ".join(str(v) for v in _items(value))


def _range_text(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value.get('start', '')}-{value.get('end', '')}"
    return str(value)


def _day_text(value: Any) -> str:
    return ", ".join(_range_text(r) for r in _items(value))


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _number(text: str) -> Any:
    """An integer as typed; anything else stays text, for the schema to refuse in its words."""
    text = text.strip()
    return int(text) if re.fullmatch(r"-?\d{1,9}", text) else text


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _tristate(value: Any) -> str:
    return "" if value is None else ("yes" if value else "no")


# --------------------------------------------------------------------------- the forms


def form_groups(section: str, raw: dict, stored_rows: int | None = None) -> list[Group]:
    """The section's form over ``raw`` (the config as plain data: in force, or a refused draft).
    Rows past ``stored_rows`` are new ones (their id can still be typed); one blank row adds."""
    build = {
        "routing": _routing_groups, "staff": _staff_groups, "branches": _branch_groups,
        "sla": _sla_groups, "reminders": _reminder_groups, "messages": _message_groups,
    }[section]  # fmt: skip
    return build(raw, stored_rows)


def _hours_fields(path: str, hours: Any, hint: str) -> list[FormField]:
    hours = hours if isinstance(hours, dict) else {}
    days = [FormField(f"{path}.{day}", DAY_LABEL[day], "day", _day_text(hours.get(day)) if hours else "")
            for day in WEEKDAYS]  # fmt: skip
    return [
        FormField(path, "Смены" if path.endswith("shifts") else "Часы работы", "note", "", hint=hint),
        *days,
    ]


def _staff_groups(raw: dict, stored_rows: int | None) -> list[Group]:
    staff = [m for m in _items(raw.get("staff")) if isinstance(m, dict)]
    stored = len(staff) if stored_rows is None else stored_rows
    branches = [("", "все филиалы")] + [(str(b.get("id")), str(b.get("name") or b.get("id")))
                                        for b in _items(raw.get("branches")) if isinstance(b, dict)]  # fmt: skip
    groups = []
    for i, member in enumerate([*staff, {}]):
        path = f"staff.{i}"
        new = i >= stored
        fields = (
            [FormField(f"{path}.id", "id (латиницей, навсегда)", "text", member.get("id", ""))] if new else []
        )
        fields += [
            FormField(f"{path}.name", "Имя", "text", member.get("name", "")),
            FormField(f"{path}.role", "Роль", "select", member.get("role", "specialist"), ROLES),
            FormField(f"{path}.skills", "Навыки", "list", _list_text(member.get("skills")),
                      hint="id услуг или групп через запятую; пусто — любые"),
            FormField(f"{path}.branch", "Филиал", "select", member.get("branch") or "", branches),
            FormField(f"{path}.capacity", "Лидов одновременно", "number", str(member.get("capacity", 20))),
            FormField(f"{path}.active", "Работает", "check", member.get("active", True) is not False),
            *_hours_fields(f"{path}.shifts", member.get("shifts"), "смены, например 10:00-19:00; пусто во все дни — часы филиала"),
        ]  # fmt: skip
        title = (
            "Новый сотрудник"
            if i == len(staff)
            else f"{member.get('name') or ''} ({member.get('id') or '—'})"
        )
        groups.append(Group(path, title, fields, new=i == len(staff)))
    return groups


def _routing_groups(raw: dict, stored_rows: int | None) -> list[Group]:
    rules = [r for r in _items(raw.get("routing")) if isinstance(r, dict)]
    groups = []
    for i, rule in enumerate([*rules, {}]):
        path = f"routing.{i}"
        match = _mapping(rule.get("match"))
        fields = [FormField(f"{path}.name", "Название", "text", rule.get("name", ""))]
        fields += [FormField(f"{path}.match.{name}", label, "list", _list_text(match.get(name)), hint=hint)
                   for name, label, hint in MATCH_FIELDS]  # fmt: skip
        fields += [
            FormField(f"{path}.match.vip", "VIP-клиент", "select", _tristate(match.get("vip")), TRISTATE),
            FormField(f"{path}.match.repeat_client", "Повторный клиент", "select",
                      _tristate(match.get("repeat_client")), TRISTATE),
            FormField(f"{path}.assign_to", "Кому", "list", _list_text(rule.get("assign_to")),
                      hint="id сотрудников, роли (manager, senior) или навыки; пусто — специалисты по услуге"),
            FormField(f"{path}.tags", "Метки", "list", _list_text(rule.get("tags"))),
            FormField(f"{path}.priority", "Приоритет", "select", rule.get("priority") or "", PRIORITIES),
        ]  # fmt: skip
        if i < len(rules):
            fields.append(FormField(f"{path}.delete", "Удалить правило", "check", False))
        title = "Новое правило" if i == len(rules) else f"{i + 1}. {rule.get('name') or ''}"
        groups.append(Group(path, title, fields, new=i == len(rules)))
    return groups


def _branch_groups(raw: dict, stored_rows: int | None) -> list[Group]:
    hours = raw.get("hours") if "hours" in raw else {d: ["10:00-20:00"] for d in WEEKDAYS}
    groups = [
        Group(
            "hours",
            "Часы работы (общие)",
            _hours_fields("hours", hours, "например 10:00-20:00; пусто — выходной"),
        )
    ]
    branches = [b for b in _items(raw.get("branches")) if isinstance(b, dict)]
    stored = len(branches) if stored_rows is None else stored_rows
    for i, branch in enumerate([*branches, {}]):
        path = f"branches.{i}"
        fields = (
            [FormField(f"{path}.id", "id (латиницей, навсегда)", "text", branch.get("id", ""))]
            if i >= stored
            else []
        )
        fields += [
            FormField(f"{path}.name", "Название", "text", branch.get("name") or ""),
            FormField(f"{path}.address", "Адрес", "text", branch.get("address") or ""),
            *_hours_fields(f"{path}.hours", branch.get("hours"), "пусто во все дни — общие часы работы"),
            FormField(f"{path}.closed_on_public_holidays", "Закрыто в праздники", "check",
                      bool(branch.get("closed_on_public_holidays"))),
        ]  # fmt: skip
        title = (
            "Новый филиал"
            if i == len(branches)
            else f"{branch.get('name') or branch.get('id')} ({branch.get('id')})"
        )
        groups.append(Group(path, title, fields, new=i == len(branches)))
    return groups


def _sla_groups(raw: dict, stored_rows: int | None) -> list[Group]:
    sla = _mapping(raw.get("sla"))
    defaults = Sla().model_dump()
    fields = [FormField(f"sla.{name}", label, "number", str(sla.get(name, defaults[name])))
              for name, label in SLA_FIELDS]  # fmt: skip
    return [Group("sla", "Сроки ответа", fields)]


def _reminder_groups(raw: dict, stored_rows: int | None) -> list[Group]:
    reminders = _mapping(raw.get("reminders"))
    defaults = Reminders().model_dump()
    fields = []
    for name, label, kind, hint in REMINDER_FIELDS:
        value = reminders.get(name, defaults[name])
        shown = (
            _list_text(value)
            if kind == "ints"
            else _range_text(value)
            if name == "quiet_hours"
            else str(value)
        )
        fields.append(
            FormField(f"reminders.{name}", label, "number" if kind == "int" else "text", shown, hint=hint)
        )
    return [Group("reminders", "Напоминания", fields)]


def message_names() -> list[str]:
    return [name for name, f in Messages.model_fields.items() if isinstance(f.default, str)]


def _message_groups(raw: dict, stored_rows: int | None) -> list[Group]:
    messages = _mapping(raw.get("messages"))
    defaults = Messages().model_dump()
    fields = [
        FormField(f"messages.{name}", name, "textarea", str(messages.get(name, defaults[name])),
                  hint="пусто — текст по умолчанию")
        for name in message_names()
    ]  # fmt: skip
    return [Group("messages", "Тексты клиентам (по-русски; английские — в YAML)", fields)]


# --------------------------------------------------------------------------- a POST → a draft


def _typed(f: FormField, text: str) -> Any:
    if f.kind == "number":
        return _number(text)
    if f.kind == "list":
        return _split(text)
    return text.replace("\r\n", "\n").strip()


def _changed_fields(groups: list[Group], form: dict[str, str]) -> dict[str, tuple[FormField, Any]]:
    """Fields whose posted value differs from what the form showed, with the value as typed."""
    changed = {}
    for group in groups:
        for f in group.fields:
            if f.kind == "note":
                continue
            if f.kind == "check":
                posted: Any = f.name in form
            else:
                if f.name not in form:
                    continue
                posted = form[f.name].replace("\r\n", "\n").strip()
            shown = f.value if f.kind == "check" else str(f.value).strip()
            if posted != shown:
                changed[f.name] = (f, posted)
    return changed


def apply_form(section: str, form: dict[str, str], raw: dict) -> dict[str, Any]:
    """The new value of each top-level key the form changed (absent: left as it is; None: removed).
    ``raw`` is the config in force as plain data; it is not modified."""
    import copy

    data = copy.deepcopy(raw)
    groups = form_groups(section, raw)
    changed = _changed_fields(groups, form)
    touched: set[str] = set()
    for name, (f, posted) in changed.items():
        parts = name.split(".")
        touched.add(parts[0])
        if parts[-1] == "delete" or (len(parts) >= 3 and parts[2] == "id"):
            continue  # handled below, row by row
        if (len(parts) >= 2 and parts[-2] in ("shifts", "hours")) or (
            parts[0] == "hours" and len(parts) == 2
        ):
            continue  # whole weeks below
        _set(data, parts, f, posted)
    for group in groups:
        _apply_week(data, group, form, changed)
    _rows(data, section, groups, form, changed)
    return {key: data.get(key) for key in touched}


def _container(data: Any, parts: list[str]) -> Any:
    """The dict/list that holds ``parts[-1]``, made as needed (a new row, a new ``match``)."""
    node = data
    for i, part in enumerate(parts[:-1]):
        key: Any = int(part) if part.isdigit() else part
        if isinstance(node, list):
            while len(node) <= key:
                node.append({})
            node = node[key]
            continue
        if not isinstance(node.get(key), dict | list):
            node[key] = [] if parts[i + 1].isdigit() else {}
        node = node[key]
    return node


def _set(data: dict, parts: list[str], f: FormField, posted: Any) -> None:
    holder = _container(data, parts)
    key = parts[-1]
    if f.kind == "check":
        holder[key] = bool(posted)
        return
    if f.kind == "select" and f.choices is TRISTATE:
        if posted:
            holder[key] = posted == "yes"
        else:
            holder.pop(key, None)
        return
    value = _typed(f, posted)
    if value in ("", []):
        holder.pop(key, None)  # empty: back to the default
        if parts[0] == "routing" and parts[-2] == "match" and not holder:
            _container(data, parts[:-1]).pop("match", None)
    else:
        holder[key] = value


def _apply_week(data: dict, group: Group, form: dict[str, str], changed: dict) -> None:
    """A week (shifts or hours) is written whole when any day changed: days left empty are days off;
    a week empty on every day goes back to the default (the branch's hours, the general hours)."""
    weeks: dict[str, list[FormField]] = {}
    for f in group.fields:
        parts = f.name.split(".")
        if parts[-1] in WEEKDAYS:
            weeks.setdefault(".".join(parts[:-1]), []).append(f)
    for path, days in weeks.items():
        if not any(f.name in changed for f in days):
            continue
        week = {f.name.rsplit(".", 1)[1]: _split(form.get(f.name, "")) for f in days}
        parts = path.split(".")
        holder = _container(data, parts)
        if any(week.values()):
            holder[parts[-1]] = week
        else:
            holder.pop(parts[-1], None)


def _rows(data: dict, section: str, groups: list[Group], form: dict[str, str], changed: dict) -> None:
    """A new row's id comes first (a row typed without one stays, for the check to ask for it);
    routing rules marked «Удалить» go."""
    rows = data.get(section)
    if section not in ("staff", "routing", "branches") or not isinstance(rows, list):
        return
    blank = next((g for g in groups if g.new), None)
    if blank is not None and section != "routing":
        index = int(blank.key.split(".")[1])
        named = form.get(f"{blank.key}.id", "").strip()
        if named and index < len(rows):
            rows[index] = {"id": named, **{k: v for k, v in rows[index].items() if k != "id"}}
        elif named:
            rows.append({"id": named})
    if section == "routing":
        doomed = {int(name.split(".")[1]) for name in changed if name.endswith(".delete")}
        data[section] = [rule for i, rule in enumerate(rows) if i not in doomed]
    if not data.get(section):
        data.pop(section, None)


# --------------------------------------------------------------------------- problems → fields


def attach(
    groups: list[Group], problems: list[tuple[Loc, str]], warnings: list[tuple[Loc, str]]
) -> list[str]:
    """Each problem onto the field (or row) its location names; the rest come back for the top."""
    fields = {f.name: f for g in groups for f in g.fields}
    rows = {g.key: g for g in groups}
    left = []
    for kind, found in (("errors", problems), ("warnings", warnings)):
        for loc, msg in found:
            loc = _message_field(loc, msg)
            text = russian(msg)
            parts = [str(p) for p in loc]
            for n in range(len(parts), 0, -1):
                name = ".".join(parts[:n])
                if name in fields:
                    getattr(fields[name], kind).append(text)
                    break
                if name in rows:
                    getattr(rows[name], kind).append(text)
                    break
            else:
                if kind == "errors":
                    left.append(f"{dotted(loc)}: {text}")
    return left


def _message_field(loc: Loc, msg: str) -> Loc:
    """A text's bad {slot} is reported at ``messages``: the message names the text."""
    if tuple(loc) == ("messages",):
        name = msg.split(":", 1)[0]
        if name in Messages.model_fields:
            return ("messages", name)
    return loc


def check_draft(text: str) -> tuple[BusinessConfig | None, list[tuple[Loc, str]], list[tuple[Loc, str]]]:
    """What ``leadflow config check`` says of a draft: the config, its errors, its warnings."""
    import yaml
    from pydantic import ValidationError

    from leadflow.domain.config_review import config_warnings

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, [((), f"not valid YAML: {exc}")], []
    if not isinstance(raw, dict):
        return None, [((), "expected a mapping with at least 'timezone' and 'services'")], []
    try:
        parsed = BusinessConfig.model_validate(raw)
    except ValidationError as exc:
        return None, validation_problems(exc), []
    return parsed, [], config_warnings(parsed)


# --------------------------------------------------------------------------- in Russian

_RUSSIAN: list[tuple[str, str]] = [
    (r"Input should be a valid integer[^;\n]*", "нужно целое число"),
    (r"Input should be a valid number[^;\n]*", "нужно число"),
    (r"Input should be a valid boolean[^;\n]*", "нужно да или нет"),
    (r"Input should be a valid string[^;\n]*", "нужен текст"),
    (r"Input should be a valid list[^;\n]*", "нужен список"),
    (r"Input should be a valid dictionary[^;\n]*", "нужен раздел с полями"),
    (r"Input should be a valid date[^;\n]*", "нужна дата ГГГГ-ММ-ДД"),
    (r"Input should be greater than or equal to ", "не меньше "),
    (r"Input should be greater than ", "больше "),
    (r"Input should be less than or equal to ", "не больше "),
    (r"Input should be ", "допустимые значения: "),
    (r"List should have at least (\d+) items?[^;\n]*", r"нужно хотя бы \1"),
    (r"Field required", "обязательное поле"),
    (r"Extra inputs are not permitted", "неизвестное поле (опечатка?)"),
    (r"not valid YAML", "это не YAML"),
    (r"expected a mapping with at least 'timezone' and 'services'", "нужны хотя бы timezone и services"),
    (r"^staff \S+ has no branch: they work in every branch", "без филиала: работает во всех филиалах"),
    (r"^staff [^:]+: ", ""),
    (r"^routing rule '[^']*': ", ""),
    (r"unknown skill", "нет такой услуги или группы"),
    (r"match on unknown service", "нет такой услуги или группы"),
    (r"match on unknown branch|unknown branch", "нет такого филиала"),
    (r"unknown assign_to", "нет такого сотрудника, роли или навыка"),
    (r"unknown (channel|temperature|intent)", "неизвестное значение"),
    (r"; one of: ", "; можно: "),
    (r"\(did you mean ('[^']*')\?\)", r"(может быть, \1?)"),
    (r"duplicate id", "такой id уже есть"),
    (r"is already branch ('[^']*')'s", r"уже указан у филиала \1"),
    (r'expected a time as HH:MM \(e\.g\. "21:00"\), got', "время нужно в виде ЧЧ:ММ (например, 21:00), а указано"),
    (r"unknown time zone", "неизвестный часовой пояс"),
    (r"is not a phone number", "— не номер телефона"),
    (r"braces do not pair in", "фигурные скобки без пары в"),
    (r"write \{\{ and \}\} for a brace itself", "саму скобку пишите как {{ или }}"),
    (r"unknown slot", "неизвестная подстановка"),
    (r"this text can use", "в этом тексте можно"),
    (r"no slots", "без подстановок"),
    # config check's warnings
    (r"^branch (\S+) has no manager or senior: nobody is told when its leads wait",
     r"у филиала \1 нет менеджера или старшего: никто не узнает, что заявки ждут"),
    (r"^service (\S+): no active specialist has it in their skills", r"услуга \1: её нет в навыках ни у одного работающего специалиста"),
    (r"never fires: rule ('[^']*') above it takes all its leads", r"никогда не сработает: правило \1 выше забирает все его заявки"),
    (r"^routing rule ", "правило "),
    (r"the (\w+) shift (\S+) is outside the opening hours( of branch \S+)?", r"смена \2 вне часов работы"),
]  # fmt: skip


def russian(message: str) -> str:
    """The validator's and the checker's words in Russian where we know them."""
    text = message
    for pattern, replacement in _RUSSIAN:
        text = re.sub(pattern, replacement, text)
    return text


def russian_config_error(line: str) -> str:
    """«черновик: staff #3.capacity (строка 14): нужно целое число» — a whole-file draft's problem."""
    text = line.replace("(line ", "(строка ").replace(", column ", ", столбец ")
    return russian(text)
