"""Which local stack a command acts on: one state file per port, stale files ignored,
several stacks → the user is asked for --port (issue 15, bug 9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from leadflow_local.client import NotRunning, read_state, running_stacks
from leadflow_local.stack import state_file_for


def _write(state_dir, port: int, pid: int) -> None:
    state_dir.mkdir(exist_ok=True)
    state = {"pid": pid, "port": port, "url": f"http://127.0.0.1:{port}"}
    state_file_for(state_dir, port).write_text(json.dumps(state), encoding="utf-8")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_only_running_stack_is_the_one(tmp_path):
    _write(tmp_path, 3000, os.getpid())
    _write(tmp_path, 3001, _dead_pid())  # killed with -9: its file stayed
    assert read_state(state_dir=tmp_path)["port"] == 3000
    assert [s["port"] for s in running_stacks(tmp_path)] == [3000]


def test_several_running_stacks_are_listed_and_the_port_asked_for(tmp_path):
    _write(tmp_path, 3001, os.getpid())
    _write(tmp_path, 3000, os.getppid())
    with pytest.raises(NotRunning) as raised:
        read_state(state_dir=tmp_path)
    assert str(raised.value) == (
        "several stacks run here, on ports 3000 (http://127.0.0.1:3000), "
        "3001 (http://127.0.0.1:3001): say which with --port N"
    )
    assert read_state(3001, state_dir=tmp_path)["port"] == 3001


def test_no_running_stack_says_how_to_start_one(tmp_path):
    _write(tmp_path, 3000, _dead_pid())
    with pytest.raises(NotRunning, match="start one with `leadflow up`"):
        read_state(state_dir=tmp_path)


def test_invoke_without_a_port_never_touches_the_running_stack(tmp_path, monkeypatch):
    from leadflow_local import cli, inspect

    monkeypatch.chdir(tmp_path)
    _write(tmp_path / ".leadflow", 3000, os.getpid())
    seen = []
    monkeypatch.setattr(inspect, "invoke_function", lambda name, event, state: seen.append(state) or {})
    event = tmp_path / "event.json"
    event.write_text("{}", encoding="utf-8")
    assert cli.main(["invoke", "ingest", "-e", str(event)]) == 0
    assert seen == [None]  # a fresh emulator


def test_invoke_with_an_unreadable_event_says_so(tmp_path, capsys):
    from leadflow_local import cli

    assert cli.main(["invoke", "ingest", "-e", str(tmp_path / "missing.json")]) == 2
    assert "cannot read the event" in capsys.readouterr().err
