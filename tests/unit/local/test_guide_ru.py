"""The Russian setup guide (docs/ru/НАСТРОЙКА.md) says only what is true: every `leadflow …`
command it shows is one the CLI takes, every setting name it names exists, its example business
config passes `leadflow config check` without a warning, and README links to it at the top."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from leadflow.business import load_business_config
from leadflow.domain.config_review import config_warnings
from leadflow_local.cli import build_parser
from leadflow_local.template import load_raw

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "docs" / "ru" / "НАСТРОЙКА.md"
EXAMPLE = ROOT / "docs" / "ru" / "salon.yaml"


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def _leadflow(command: str) -> str | None:
    command = command.split(" #", 1)[0].split(" | ", 1)[0].split(" < ", 1)[0].strip()
    command = command.removeprefix(".venv/bin/")
    if command.startswith("leadflow ") and not command.split()[1].endswith(":"):
        return command
    return None


def typed_commands() -> list[str]:
    """`leadflow …` lines of the guide's code blocks: what a reader copies and runs."""
    lines = [
        line
        for block in re.findall(r"```[a-z]*\n(.*?)```", guide(), flags=re.S)
        for line in block.splitlines()
    ]
    return sorted({c for c in map(_leadflow, lines) if c})


def named_commands() -> list[str]:
    """`leadflow …` in inline code: a command named in the text, perhaps with [optional] parts."""
    return sorted({c for c in map(_leadflow, re.findall(r"`([^`\n]+)`", guide())) if c})


@pytest.mark.parametrize("command", typed_commands())
def test_every_command_in_the_guide_is_one_the_cli_takes(command):
    parser = build_parser()
    try:
        parser.parse_args(shlex.split(command)[1:])
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"the guide shows `{command}`, which the CLI refuses (exit {exc.code})")


def _subparser(parser: argparse.ArgumentParser, word: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(word)
    return None


@pytest.mark.parametrize("command", named_commands())
def test_every_command_named_in_the_text_exists_with_its_options(command):
    words = shlex.split(command.replace("[", " ").replace("]", " "))[1:]
    parser, depth = build_parser(), 0
    for word in words:
        inner = None if word.startswith("-") else _subparser(parser, word)
        if inner is None:
            break
        parser, depth = inner, depth + 1
    assert depth, f"`{command}`: no such command"
    known = {option for action in parser._actions for option in action.option_strings}
    unknown = [w for w in words if w.startswith("--") and w not in known]
    assert not unknown, f"`{command}`: the CLI has no {unknown}"


def test_the_guide_shows_the_commands_a_newcomer_needs():
    shown = {c.split()[1] for c in typed_commands()}
    assert {"up", "leads", "lead", "kpi", "config", "staff", "doctor", "dlq", "forget"} <= shown


def known_text() -> str:
    sources = [ROOT / "README.md", ROOT / "template.yaml", ROOT / "events" / "call" / "README.md"]
    for folder in (ROOT / "layers" / "common" / "leadflow", ROOT / "local" / "leadflow_local"):
        sources += [*folder.rglob("*.py"), *folder.rglob("*.md")]
    return "\n".join(p.read_text(encoding="utf-8") for p in sources)


def test_every_setting_name_in_the_guide_exists():
    known = known_text()
    names = set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`", guide()))
    assert names, "the guide names no settings?"
    unknown = sorted(n for n in names if n not in known)
    assert not unknown, f"the guide names settings nothing defines: {unknown}"


def test_the_guide_explains_every_stack_parameter_and_no_other():
    parameters = set(load_raw()["Parameters"])
    asked = set(re.findall(r"`Parameter (\w+)`", guide()))
    assert asked <= parameters, f"not parameters of template.yaml: {sorted(asked - parameters)}"
    named = asked | set(re.findall(r"`(\w+)`", guide()))
    assert parameters <= named, f"parameters the guide does not explain: {sorted(parameters - named)}"


def test_the_example_business_checks_clean():
    business = load_business_config(EXAMPLE)
    assert config_warnings(business) == []
    assert len(business.branches) == 2 and business.routing


def test_readme_links_the_guide_in_its_first_lines():
    first_lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:4]
    assert any("docs/ru/НАСТРОЙКА.md" in line for line in first_lines)
