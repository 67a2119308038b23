"""What a save changed, in a few Russian lines for the versions list: «SLA: hot_min 15 → 10»,
«Сотрудники: добавлен olga», «Правила: удалено правило «vip»». Pure: two configs as plain data."""

from __future__ import annotations

from typing import Any

SECTION_LABEL = {
    "routing": "Правила", "staff": "Сотрудники", "branches": "Филиалы", "hours": "Часы работы",
    "sla": "SLA", "reminders": "Напоминания", "messages": "Тексты", "services": "Услуги",
    "knowledge": "Сведения", "booking": "Запись", "crm": "CRM", "panel": "Панель",
}  # fmt: skip
MAX_LINES = 8
_MISSING = object()


def describe_changes(before: Any, after: Any) -> list[str]:
    """Up to MAX_LINES lines (and «… и ещё N»), in the order of the new config's sections."""
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    lines: list[str] = []
    for key in [*after, *(k for k in before if k not in after)]:
        old, new = before.get(key, _MISSING), after.get(key, _MISSING)
        if old == new:
            continue
        label = SECTION_LABEL.get(key, key)
        if old is _MISSING or new is _MISSING:
            lines.append(f"{label}: {'добавлен раздел' if old is _MISSING else 'раздел удалён'}")
            continue
        if isinstance(old, dict | list) or isinstance(new, dict | list):
            lines += [f"{label}: {change}" for change in _changes(old, new, "")]
        else:
            lines.append(f"{label}: {_short(old)} → {_short(new)}")
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], f"… и ещё {len(lines) - MAX_LINES + 1}"]
    return lines


def _key_of(item: Any) -> str | None:
    if isinstance(item, dict):
        for name in ("id", "name"):
            if isinstance(item.get(name), str | int):
                return str(item[name])
    return None


def _changes(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in [*new, *(k for k in old if k not in new)]:
            a, b = old.get(key, _MISSING), new.get(key, _MISSING)
            if a != b:
                found += _changes(a, b, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(old, list) and isinstance(new, list) and all(_key_of(i) for i in old + new):
        old_by, new_by = {_key_of(i): i for i in old}, {_key_of(i): i for i in new}
        found = [f"добавлен «{k}»" for k in new_by if k not in old_by]
        found += [f"удалён «{k}»" for k in old_by if k not in new_by]
        for k, item in new_by.items():
            if k in old_by and old_by[k] != item:
                found += [f"«{k}» {change}" for change in _changes(old_by[k], item, "")]
        if not found and [_key_of(i) for i in old] != [_key_of(i) for i in new]:
            found.append("изменён порядок")
        return [f"{path} {line}" if path else line for line in found]
    return [f"{path or 'значение'}: {_short(old)} → {_short(new)}"]


def _short(value: Any) -> str:
    if value is _MISSING or value is None:
        return "—"
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        text = "[" + ", ".join(map(str, value)) + "]"
    elif isinstance(value, dict | list):
        text = "…"
    else:
        text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"
