"""`leadflow demo --crm sheets`: the demo's story with a Google sheet as the CRM, on the stand-in of
Google's token endpoint and Sheets API (the production client and adapter talk to it over HTTP).
What it prints at the end is the sheet as the owner sees it: one header, a row per target lead
found by its id, and each row's status the lead's status now (the booked one's row updated)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from leadflow.adapters.crm.sheets_crm import COLUMNS
from leadflow.domain.cards import STATUS_LABEL

pytestmark = pytest.mark.integration
SHEET_TITLE = "The Google sheet «Лиды» (as the owner sees it in the browser)"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> str:
    result = subprocess.run([sys.executable, "-m", "leadflow_local.cli", "demo", "--crm", "sheets"],
                            cwd=tmp_path_factory.mktemp("demo-sheets"), capture_output=True, text=True,
                            timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _leads(demo: str) -> dict[str, str]:
    """Lead id → status, from the `leadflow leads` table the demo prints."""
    table = demo.split("\nLeads (as `leadflow leads` shows them)\n", 1)[1].split("\n\n", 1)[0]
    return dict(re.findall(r"^(L\w+)\s+\S+ \S+\s+\S+\s+(\S+)", table, flags=re.M))


def _sheet(demo: str) -> tuple[str, list[dict[str, str]]]:
    """The printed sheet: its header line and each row's cells by header, cut at the header's columns."""
    block = demo.split(SHEET_TITLE + "\n", 1)[1].split("\n\n", 1)[0]
    header, *lines = [line.removeprefix("  ") for line in block.splitlines()]
    titles = re.split(r" {2,}", header)
    starts: list[int | None] = []
    for title in titles:
        starts.append(header.index(title, (starts[-1] or 0) if starts else 0))
    starts.append(None)
    rows = [
        {title: line[starts[i] : starts[i + 1]].strip() for i, title in enumerate(titles)} for line in lines
    ]
    return header, rows


def test_the_sheets_demo_ends_well(demo):
    assert demo.rstrip().endswith("leadflow demo: done")
    assert "Its CRM is a Google sheet" in demo
    for noise in ("Traceback", '{"level"', "failed:", "Exception"):
        assert noise not in demo


def test_the_sheet_has_our_header_once_and_a_row_per_target_lead(demo):
    leads = _leads(demo)
    targets = {lead_id for lead_id, status in leads.items() if status != "not_target"}
    assert len(targets) >= 6 and len(targets) < len(leads)  # the spam is no lead for the sheet
    header, rows = _sheet(demo)
    assert re.split(r" {2,}", header) == [title for _, title in COLUMNS]
    assert demo.count(header) == 1
    ids = [row["ID лида"] for row in rows]
    assert sorted(ids) == sorted(targets)  # one row each, nothing twice
    assert all(row["Дата и время"] and row["Канал"] for row in rows)


def test_each_row_shows_its_leads_status_the_booked_one_updated(demo):
    leads = _leads(demo)
    # Irina is booked by Anna's «Записан»; the client who picks an offered slot is booked by the bot
    booked = [lead_id for lead_id, status in leads.items() if status == "booked"]
    assert len(booked) >= 1
    _, rows = _sheet(demo)
    status = {row["ID лида"]: row["Статус"] for row in rows}
    assert all(status[lead_id] == STATUS_LABEL["booked"] != STATUS_LABEL["assigned"] for lead_id in booked)
    for lead_id, row_status in status.items():
        assert row_status == STATUS_LABEL[leads[lead_id]]
    irina = next(row for row in rows if row["Имя"] == "Ирина")
    assert irina["ID лида"] in booked and irina["Ответственный"] == "Анна"
