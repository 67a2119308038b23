"""The first hour's bugs in the CLI (issue 15), each through `leadflow_local.cli.main` as a user
types it: dates as people write them, no traceback for a closed pipe, a readable `leads` table,
a clear refusal of an LLM that is not configured, bookings that cannot be."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leadflow.adapters.store.leads import LeadStore
from leadflow_local.cli import main
from tests.support.aws import deployed_stack
from tests.support.builders import lead

STACK = "salon-prod"
CATALOG = Path(__file__).resolve().parents[1] / "domain" / "qualify" / "data" / "catalog.yaml"


@pytest.fixture
def prod(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with deployed_stack(STACK, {"Stage": "prod", "SecretsPrefix": "/leadflow/salon"}) as stack:
        yield stack


def seed(stack, *leads) -> None:
    store = LeadStore(stack.table("LeadsTable"))
    for item in leads:
        store.create(item)


def test_kpi_takes_a_day_written_the_russian_way(prod, capsys):
    yesterday = datetime.now(UTC) - timedelta(days=1)
    seed(prod, lead("L1", received_at=yesterday), lead("L2", received_at=yesterday - timedelta(days=10)))
    day = yesterday.astimezone(SALON_TZ).strftime("%d.%m.%Y")
    assert main(["kpi", "--stack", STACK, "--since", day, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["leads"] == 1


def test_a_day_that_is_not_a_day_is_a_clear_error_not_a_traceback(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["kpi", "--since", "31.02.2026"])
    assert exited.value.code == 2
    assert "expected a day as YYYY-MM-DD or DD.MM.YYYY, got '31.02.2026'" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly():
    # `leadflow qualify … | head -1`: the reader goes away after one line.
    lines = "\n".join(
        json.dumps({"id": n, "text": "маникюр завтра в 12", "received_at": "2026-03-12T10:00:00+07:00"})
        for n in range(2000)
    )
    script = "import sys; from leadflow_local.cli import main; sys.exit(main(['qualify', '--catalog', sys.argv[1]]))"
    command = f'{sys.executable} -c "{script}" {CATALOG} | head -1'
    done = subprocess.run(["bash", "-c", command], input=lines, capture_output=True, text=True, timeout=60)
    assert done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_leads_is_a_table_with_a_header_the_owner_and_why(prod, capsys):
    seed(prod, lead("L-7", received_at=datetime.now(UTC), owner="anna", assignment_reason="rule default: round-robin",
                    branch="center", contact={"name": "Ирина"}))  # fmt: skip
    assert main(["leads", "--stack", STACK]) == 0
    out = capsys.readouterr().out.splitlines()
    header = out[0].split()
    assert (
        header[:4] == ["LEAD", "RECEIVED", "CHANNEL", "STATUS"] and "OWNER" in header and "BRANCH" in header
    )
    assert out[1].startswith("L-7") and "Анна" in out[1] and "center" in out[1] and out[1].endswith("Ирина")
    assert out[2] == "    why: rule default: round-robin"


def test_qualify_with_the_llm_but_no_key_says_so_and_stops(monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert main(["qualify", "--catalog", str(CATALOG), "--engine", "llm"]) == 2
    assert "--engine llm needs OPENAI_API_KEY" in capsys.readouterr().err


def test_qualify_with_fallback_warns_loudly_and_answers_offline(monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    line = json.dumps({"id": 1, "text": "маникюр завтра в 12", "received_at": "2026-03-12T10:00:00+07:00"})
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(line + "\n"))
    assert main(["qualify", "--catalog", str(CATALOG), "--engine", "llm", "--fallback"]) == 0
    captured = capsys.readouterr()
    assert "WARNING: no LLM is configured" in captured.err
    assert json.loads(captured.out)["service"] == "manicure"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"status": "not_target", "intent": "not_target"}, "is not a target lead"),
        ({"status": "lost"}, "is closed (lost)"),
    ],
)
def test_book_refuses_what_cannot_be_booked(prod, capsys, change, said):
    seed(prod, lead("L-9", received_at=datetime.now(UTC), **change))
    assert (
        main(["book", "L-9", "--at", (datetime.now(UTC) + timedelta(days=1)).isoformat(), "--stack", STACK])
        == 1
    )
    assert said in capsys.readouterr().err


def test_book_refuses_the_past(prod, capsys):
    seed(prod, lead("L-9", received_at=datetime.now(UTC)))
    assert main(["book", "L-9", "--at", "2020-01-01T10:00", "--stack", STACK]) == 1
    assert "is in the past" in capsys.readouterr().err


SALON_TZ = __import__("zoneinfo").ZoneInfo("Asia/Krasnoyarsk")
