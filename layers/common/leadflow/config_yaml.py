"""Changing a stored business config the way its author would: the panel's forms and «Отключить»
edit the YAML text in place (ruamel.yaml round-trip), so comments, key order and quoting survive,
and every top-level section a change did not touch keeps its exact text."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:")


class ConfigEditError(ValueError):
    """The text could not be edited (not YAML, or not a mapping at the top)."""


def _round_trip() -> Any:
    from ruamel.yaml import YAML

    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap a line the author wrote
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def edit_config(text: str, change: Callable[[Any], None]) -> str:
    """``change`` gets the config as ruamel's round-trip mapping and edits it in place; the text
    it returns says the same as that mapping, with the untouched sections as they were written."""
    import yaml
    from ruamel.yaml.error import YAMLError

    rt = _round_trip()
    try:
        data = rt.load(text)
    except YAMLError:
        # What PyYAML reads but ruamel refuses (a key twice: PyYAML keeps the last) is still edited,
        # as plain data: its comments are lost, its meaning is not.
        try:
            plain = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigEditError(f"not valid YAML: {exc}") from None
        if not isinstance(plain, dict):
            raise ConfigEditError("expected a mapping at the top") from None
        change(plain)
        return str(yaml.safe_dump(plain, allow_unicode=True, sort_keys=False))
    if not isinstance(data, dict):
        raise ConfigEditError("expected a mapping at the top")
    change(data)
    out = io.StringIO()
    rt.dump(data, out)
    edited = out.getvalue()
    kept = _keep_untouched_sections(text, edited)
    # The splice is only a nicety: when it would change the meaning, the full round-trip stands.
    return kept if yaml.safe_load(kept) == yaml.safe_load(edited) else edited


def assign(target: Any, key: Any, value: Any) -> None:
    """``target[key] = value``, keeping the existing node (and its comments and style) wherever the
    old and the new value agree; plain dicts and lists merge into round-trip ones item by item."""
    current = target[key] if _has(target, key) else None
    if isinstance(current, dict) and isinstance(value, dict):
        for name in [k for k in current if k not in value]:
            del current[name]
        for name, item in value.items():
            assign(current, name, item)
        return
    if isinstance(current, list) and isinstance(value, list):
        for i, item in enumerate(value):
            if i < len(current):
                assign(current, i, item)
            else:
                current.append(item)
        del current[len(value) :]
        return
    if current != value or type(current) is not type(value) or not _has(target, key):
        target[key] = value


def _has(target: Any, key: Any) -> bool:
    return key in target if isinstance(target, dict) else 0 <= key < len(target)


def _sections(text: str) -> dict[str, str]:
    """The text of each top-level key, from its line up to the next top-level key."""
    found: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        match = _TOP_KEY.match(line)
        if match:
            if name is not None:
                found[name] = "".join(lines)
            name, lines = match.group(1), []
        if name is not None:
            lines.append(line)
    if name is not None:
        found[name] = "".join(lines)
    return found


def _keep_untouched_sections(before: str, after: str) -> str:
    import yaml

    old, new = _sections(before), _sections(after)
    out = after
    for name, text in new.items():
        original = old.get(name)
        if original is None or original == text:
            continue
        try:
            same = yaml.safe_load(original) == yaml.safe_load(text)
        except yaml.YAMLError:
            same = False
        if same:
            out = out.replace(text, original if original.endswith("\n") else original + "\n", 1)
    return out


def set_staff_active(text: str, staff_id: str, active: bool) -> str:
    """The config with one staff member's ``active`` set, everything else as written."""

    def change(data: Any) -> None:
        for member in data.get("staff") or []:
            if isinstance(member, dict) and member.get("id") == staff_id:
                member["active"] = active

    return edit_config(text, change)
