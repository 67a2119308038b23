"""Failpoints: LEADFLOW_FAILPOINTS arms named crashes; *N is counted over every process of a run."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from leadflow import failpoints
from leadflow.failpoints import Failpoint, FailpointError, parse

ROOT = Path(__file__).resolve().parents[3]


def test_a_spec_arms_each_name_once_unless_it_says_how_many_times():
    assert parse("ingest.after_store=crash, route.after_crm_push=crash*3 ,") == {
        "ingest.after_store": Failpoint("ingest.after_store", "crash", 1),
        "route.after_crm_push": Failpoint("route.after_crm_push", "crash", 3),
    }
    assert parse("") == {}


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("ingest.after_stor=crash", "unknown failpoint 'ingest.after_stor'"),
        ("ingest.after_store=explode", "unknown action 'explode'"),
        ("ingest.after_store", "cannot read 'ingest.after_store'"),
        ("ingest.after_store=crash*0", "at least once"),
    ],
)
def test_a_spec_it_cannot_honour_is_refused_with_what_it_knows(spec, says):
    with pytest.raises(FailpointError) as refused:
        parse(spec)
    assert says in str(refused.value)
    if "unknown failpoint" in says:
        assert all(name in str(refused.value) for name in failpoints.KNOWN)


def test_the_names_the_steps_will_use_are_known():
    assert {
        "ingest.after_store", "ingest.after_enqueue", "score.after_reply_sent", "score.before_hand_on",
        "route.after_assign", "route.after_crm_push", "route.after_card_sent", "escalate.after_send",
        "remind.after_send", "workspace.after_action",
    } <= failpoints.KNOWN  # fmt: skip


def test_unarmed_it_does_nothing_and_costs_nothing(monkeypatch):
    monkeypatch.delenv(failpoints.ENV, raising=False)
    started = time.perf_counter()
    for _ in range(100_000):
        failpoints.hit("ingest.after_store")
    assert time.perf_counter() - started < 0.5  # well under a microsecond a call, even on a busy machine


def test_armed_for_another_name_it_lets_this_one_pass(monkeypatch):
    monkeypatch.setenv(failpoints.ENV, "route.after_crm_push=crash")
    failpoints.hit("ingest.after_store")  # still here
    with pytest.raises(FailpointError):
        failpoints.hit("ingest.after_stor")  # a typo in a hit() is caught while a run is armed


def test_armed_n_times_it_fires_n_times_over_all_processes_of_a_run(tmp_path):
    state = tmp_path / "failpoints.json"
    env = {"LEADFLOW_FAILPOINTS": "ingest.after_store=crash*2", "LEADFLOW_FAILPOINTS_STATE": str(state),
           "PYTHONPATH": str(ROOT / "layers" / "common")}  # fmt: skip
    code = "from leadflow import failpoints; failpoints.hit('ingest.after_store'); print('passed')"
    # Six processes at once, as workers would hit it.
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(6)]  # fmt: skip
    results = [(run.wait(timeout=60), *run.communicate()) for run in runs]
    crashed = [r for r in results if r[0] == failpoints.CRASH_EXIT_CODE]
    passed = [r for r in results if r[0] == 0]
    assert len(crashed) == 2 and len(passed) == 4
    assert all(err == "failpoint ingest.after_store fired\n" and out == "" for _, out, err in crashed)
    assert all(out == "passed\n" and err == "" for _, out, err in passed)
    assert failpoints.fired_counts(state) == {"ingest.after_store": 2}


def test_a_crash_skips_finally_blocks_and_buffered_output(tmp_path):
    env = {
        "LEADFLOW_FAILPOINTS": "score.after_reply_sent=crash",
        "PYTHONPATH": str(ROOT / "layers" / "common"),
    }
    code = (
        "import sys\nfrom leadflow import failpoints\nprint('buffered', end='')\n"
        "try:\n    failpoints.hit('score.after_reply_sent')\nfinally:\n    sys.stderr.write('cleanup\\n')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == failpoints.CRASH_EXIT_CODE
    assert run.stderr == "failpoint score.after_reply_sent fired\n" and run.stdout == ""
