"""Правила as forms: one form per config section (routing rules, staff, branches and hours, SLA,
reminders, message texts), every field named by its config path (``staff.2.capacity``).

A POST rebuilds the draft from the config in force plus the fields that changed (so untouched
values keep their YAML, comments included), validates it as ``leadflow config check`` does, and
puts each problem, in Russian, next to the field its location names."""

from __future__ import annotations

import contextlib
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
    hhmm,
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
    ("utm_source", "UTM-источник", ""),
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
    ("quiet_hours", "Тихие часы (не писать клиентам)", "range", "например 21:00-09:00"),
    ("digest_at", "Ежедневная сводка в", "time", "ЧЧ:ММ"),
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


def _time_text(value: Any) -> str:
    """A time of day as the owner meant it (YAML reads an unquoted 21:00 as the number 1260)."""
    try:
        return hhmm(value)
    except ValueError:
        return str(value)


def _range_text(value: Any) -> str:
    if isinstance(value, dict):
        return f"{_time_text(value.get('start', ''))}-{_time_text(value.get('end', ''))}"
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
            fields.insert(1, FormField(f"{path}.position", "Порядок (первое подходящее правило срабатывает)",
                                       "number", str(i + 1)))  # fmt: skip
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
        shown = {"ints": _list_text, "range": _range_text, "time": _time_text}.get(kind, str)(value)
        fields.append(
            FormField(
                f"reminders.{name}",
                label,
                {"int": "number", "ints": "ints"}.get(kind, "text"),
                shown,
                hint=hint,
            )
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
    if f.kind == "ints":
        return [_number(part) for part in _split(text)]
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


Path = tuple[str | int, ...]
# ("set", path, value) | ("del", path, None) | ("append", (section,), row) | ("order", (section,), (kept, count))
Edit = tuple[str, Path, Any]


def _path(name: str) -> Path:
    return tuple(int(p) if p.isdigit() else p for p in name.split("."))


def _value(f: FormField, posted: Any) -> Any:
    """What a changed field means in the config; None: the key goes (back to its default)."""
    if f.kind == "check":
        return bool(posted)
    if f.kind == "select" and f.choices is TRISTATE:
        return (posted == "yes") if posted else None
    value = _typed(f, posted)
    return None if value in ("", []) else value


def form_edits(section: str, form: dict[str, str], raw: dict) -> list[Edit]:
    """The edits a posted form makes to the config in force (``raw``, as plain data): only the
    fields that changed, a week (shifts, hours) whole when any day of it changed, a new row whole
    when anything was typed in it, and the routing rules moved («Порядок») or marked «Удалить»."""
    groups = form_groups(section, raw)
    changed = _changed_fields(groups, form)
    edits: list[Edit] = []
    doomed: list[int] = []
    moved: dict[int, float] = {}
    for group in groups:
        mine = {name: fp for name, fp in changed.items() if any(f.name == name for f in group.fields)}
        if not mine:
            continue
        if group.new:
            edits.append(("append", (section,), _new_row(section, group, form)))
            continue
        weeks: set[str] = set()
        for name, (f, posted) in mine.items():
            path = _path(name)
            if path[-1] == "delete":
                doomed.append(int(path[1]))
            elif path[-1] == "position":
                with contextlib.suppress(ValueError):  # not a number: the rule stays where it was
                    moved[int(path[1])] = float(posted.replace(",", "."))
            elif f.kind == "day":
                weeks.add(name.rsplit(".", 1)[0])
            else:
                value = _value(f, posted)
                edits.append(("del", path, None) if value is None else ("set", path, value))
        for week in sorted(weeks):
            days = {day: _split(form.get(f"{week}.{day}", "")) for day in WEEKDAYS}
            edits.append(("set", _path(week), days) if any(days.values()) else ("del", _path(week), None))
    if doomed or moved:
        rows = len(_items(raw.get(section)))
        # A moved rule goes before the ones already at its place; a deleted one goes.
        order = sorted(range(rows), key=lambda i: (moved.get(i, i + 1), i not in moved, i))
        edits.append(("order", (section,), ([i for i in order if i not in doomed], rows)))
    return edits


def _new_row(section: str, group: Group, form: dict[str, str]) -> dict:
    """A new staff member, branch or rule from its blank row: what was typed, the id first (a row
    typed without one is kept, for the check to ask for the id at its field)."""
    row: dict[str, Any] = {}
    prefix = len(group.key) + 1
    for f in group.fields:
        if f.kind == "note" or f.kind == "day":
            continue
        posted: Any = (
            f.name in form if f.kind == "check" else form.get(f.name, "").replace("\r\n", "\n").strip()
        )
        if posted == (f.value if f.kind == "check" else str(f.value).strip()):
            continue  # left as the blank row showed it: the default
        value = _value(f, posted)
        if value is None:
            continue
        node = row
        keys = f.name[prefix:].split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    weeks = {f.name.rsplit(".", 1)[0] for f in group.fields if f.kind == "day"}
    for week in weeks:
        days = {day: _split(form.get(f"{week}.{day}", "")) for day in WEEKDAYS}
        if any(days.values()):
            row[week[prefix:]] = days
    return row


def apply_edits(data: Any, edits: list[Edit]) -> None:
    """The edits onto the config as loaded (ruamel's round-trip mapping, or plain data)."""
    from leadflow.config_yaml import assign

    for op, path, value in edits:
        if op == "append":
            rows = data.get(path[0])
            if not isinstance(rows, list):
                data[path[0]] = rows = []
            rows.append(value)
            continue
        if op == "order":  # (the rows kept, in their new order; how many there were): new ones stay last
            rows = data.get(path[0])
            kept, count = value
            if isinstance(rows, list):
                reordered = [rows[i] for i in kept] + list(rows[count:])
                del rows[:]
                rows.extend(reordered)
                if not rows:
                    del data[path[0]]
            continue
        node = data
        for key in path[:-1]:
            inside = node.get(key) if isinstance(node, dict) else node[key]
            if not isinstance(inside, dict | list):
                if op == "del":
                    break
                inside = node[key] = {}
            node = inside
        else:
            last = path[-1]
            if op == "set":
                assign(node, last, value)
            elif isinstance(node, dict):
                node.pop(last, None)
            elif isinstance(last, int) and last < len(node):
                del node[last]


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
