"""The local stack runs each function in worker processes, as Lambda runs containers: a handler
past its Timeout is killed and its batch comes back; a crash ends one worker, not the stack; the
emulator (its own process) writes atomically; failpoints fire as often as armed, across workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leadflow import failpoints, wiring
from leadflow_local.inspect import all_leads, outbox
from leadflow_local.stack import LocalStack, _free_port
from leadflow_local.webhooks import Webhooks
from tests.integration import worker_hooks

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout: float = 20, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def planted(tmp_path, monkeypatch) -> Iterator:
    """A local stack whose workers run one of tests/integration/worker_hooks.py's faults."""
    stacks: list[LocalStack] = []
    saved = dict(os.environ)

    def start(hook: str, **options) -> LocalStack:
        stack = LocalStack(port=_free_port(), state_dir=tmp_path, schedule=False,
                           worker_setup=f"tests.integration.worker_hooks:{hook}", **options)  # fmt: skip
        stacks.append(stack)
        stack.start()
        return stack

    yield start
    for stack in stacks:
        stack.stop()
    os.environ.clear()
    os.environ.update(saved)
    wiring.reset()


def test_a_handler_past_its_timeout_is_killed_and_its_message_comes_back(planted, tmp_path, monkeypatch):
    # Given score's first message hangs, with a Timeout of 1 s and one score worker
    monkeypatch.setenv(worker_hooks.SLOW_CALLS, str(tmp_path / "slow"))
    answered: list[dict] = []  # the score events that succeeded

    def invoked(name: str, event: dict, _invocation) -> None:
        if name == "score":
            answered.append(event)

    stack = planted("slow_first_score", timeouts={"score": 1}, pool_sizes={"score": 1}, on_invocation=invoked)
    (hung_worker,) = stack.pools["score"].pids()
    hooks = Webhooks(stack.url, stack.state()["secrets"])

    # When a client writes
    delivery = hooks.telegram_text(77001, "Нина", "Хочу на маникюр завтра в 15:00", datetime.now(UTC))
    posted = time.monotonic()
    assert hooks.post(delivery).status_code == 200

    # Then the hung worker is killed, the message comes back after its backoff and a new worker
    # answers it, once
    def replied():
        return [m for m in outbox() if m["kind"] == "reply"]

    (reply,) = wait_for(replied, timeout=30)
    assert time.monotonic() - posted >= 1 + 2  # the Timeout, then the backoff of a first failure
    assert not _running(hung_worker)
    assert hung_worker not in stack.pools["score"].pids()
    (event,) = wait_for(lambda: answered)  # the one score invocation that succeeded
    (record,) = event["Records"]
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert worker_hooks.count(tmp_path / "slow") == 2
    (lead,) = all_leads()
    assert reply["lead_id"] == lead.lead_id


def test_a_crash_in_one_worker_leaves_the_stack_serving(planted, tmp_path, monkeypatch):
    monkeypatch.setenv(worker_hooks.CRASH_CALLS, str(tmp_path / "crashes"))
    stack = planted("crash_first_ingest")
    before = set(stack.pools["ingest"].pids())
    hooks = Webhooks(stack.url, stack.state()["secrets"])
    delivery = hooks.telegram_text(
        77002, "Олег", "Хочу на стрижку завтра в 12:00, мой номер 89135550202", datetime.now(UTC)
    )

    # The first webhook kills its ingest worker: the sender gets a 5xx and will deliver again…
    assert hooks.post(delivery).status_code == 502
    # …and the stack goes on: the redelivery becomes a lead with a reply and an owner.
    assert hooks.post(delivery).status_code == 200
    assert stack.drain(20)
    (lead,) = all_leads()
    assert lead.owner and [m["kind"] for m in outbox() if m["lead_id"] == lead.lead_id].count("reply") == 1

    # The dead worker was replaced: the pool is whole again, with one new process.
    def whole_pool() -> set[int] | None:
        pids = set(stack.pools["ingest"].pids())
        return pids if len(pids) == 3 else None

    after = wait_for(whole_pool)
    assert len(before - after) == 1 and len(after - before) == 1
    assert not _running(*(before - after))


def test_concurrent_conditional_writes_through_the_emulator_never_both_pass(tmp_path):
    from leadflow_local.emulator import Emulator
    from leadflow_local.template import load_template

    saved = dict(os.environ)
    emulator = Emulator(load_template())
    emulator.start()
    try:
        dynamodb = emulator.client("dynamodb", max_pool_connections=32)
        keys, contenders = 50, 8
        winners: dict[str, list[int]] = {}
        lock = threading.Lock()
        start = threading.Barrier(contenders)

        def contend(me: int) -> None:
            start.wait()
            for k in range(keys):
                try:  # each contender claims every lead: only one claim per lead may pass
                    dynamodb.update_item(
                        TableName="LeadsTable", Key={"lead_id": {"S": f"L-race-{k}"}},
                        UpdateExpression="SET claimed_by = :me", ConditionExpression="attribute_not_exists(claimed_by)",
                        ExpressionAttributeValues={":me": {"N": str(me)}},
                    )  # fmt: skip
                except dynamodb.exceptions.ConditionalCheckFailedException:
                    continue
                with lock:
                    winners.setdefault(f"L-race-{k}", []).append(me)

        threads = [threading.Thread(target=contend, args=(me,)) for me in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == keys
        assert {key: len(who) for key, who in winners.items() if len(who) > 1} == {}
        for key, (winner,) in winners.items():
            item = dynamodb.get_item(TableName="LeadsTable", Key={"lead_id": {"S": key}})["Item"]
            assert item["claimed_by"] == {"N": str(winner)}
    finally:
        emulator.stop()
        os.environ.clear()
        os.environ.update(saved)


# --------------------------------------------------------------------------- `leadflow up` and failpoints


def _up(cwd: Path, port: int, failpoint_spec: str, hook: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "FORM_", "META_", "VK_"))}
    env.update(LEADFLOW_FAILPOINTS=failpoint_spec)  # PYTHONPATH: this checkout (tests/conftest.py)
    command = ["-m", "tests.integration.worker_hooks", hook] if hook else ["-m", "leadflow_local.cli"]
    return subprocess.Popen([sys.executable, *command, "up", "--port", str(port)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def test_an_unknown_failpoint_stops_leadflow_up_with_the_names_it_knows(tmp_path):
    process = _up(tmp_path, _free_port(), "ingest.after_store=crash,route.after_crm_pushed=crash*3")
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "unknown failpoint 'route.after_crm_pushed'" in output
    assert all(name in output for name in failpoints.KNOWN)
    assert "leadflow up: http://" not in output


def test_a_failpoint_armed_twice_fires_twice_across_workers(tmp_path):
    port = _free_port()
    process = _up(tmp_path, port, "ingest.after_store=crash*2")
    try:
        assert process.stdout
        assert process.stdout.readline().strip() == f"leadflow up: http://127.0.0.1:{port}"
        state = json.loads((tmp_path / ".leadflow" / f"local-{port}.json").read_text())
        hooks = Webhooks(state["url"], state["secrets"])
        statuses = []
        for i in range(5):  # each webhook hits the failpoint in whichever ingest worker takes it
            delivery = hooks.telegram_text(77100 + i, "Ира", "Запишите на брови", datetime.now(UTC))
            statuses.append(hooks.post(delivery).status_code)
        assert statuses == [502, 502, 200, 200, 200]
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert output.count("failpoint ingest.after_store fired") == 2
    assert "failpoint ingest.after_store fired\n" in output
    assert not list((tmp_path / ".leadflow").glob("failpoints-*.json"))  # the run's count is removed with it


def _running(*pids: int) -> bool:
    """Any of these processes still running (a zombie has finished: it only waits to be reaped)?"""
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if state not in ("Z", "X"):
            return True
    return False
