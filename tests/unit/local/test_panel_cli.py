"""`leadflow whatif` and `leadflow panel-link` on a deployed stack (moto), as the owner types them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from leadflow.adapters.store.leads import LeadStore
from leadflow_local.cli import main
from tests.support.aws import SALON, WEBHOOK_BASE, deployed_stack
from tests.support.builders import lead

STACK = "salon-prod"
KATYA = "{id: katya, name: Катя, role: specialist, skills: [nails, face, body], branch: center, capacity: 15}"


@pytest.fixture
def prod(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with deployed_stack(STACK, {"Stage": "prod", "SecretsPrefix": "/leadflow/salon"}) as stack:
        yield stack


def test_whatif_replays_the_last_days_under_a_draft(prod, tmp_path, capsys):
    store = LeadStore(prod.table("LeadsTable"))
    start = datetime.now(UTC) - timedelta(days=2)
    for i in range(4):  # round-robin under the rules in force: Anna, Katya, Anna, Katya
        at = start + timedelta(minutes=i)
        store.create(lead(f"M{i}", status="assigned", owner="anna", service="manicure", branch="center",
                          received_at=at, last_message_at=at))  # fmt: skip
    old = start - timedelta(days=40)
    store.create(lead("OLD", status="assigned", service="manicure", received_at=old, last_message_at=old))
    draft = tmp_path / "draft.yaml"
    draft.write_text(SALON.read_text(encoding="utf-8").replace(KATYA, KATYA[:-1] + ", active: false}"))
    assert main(["whatif", str(draft), "--stack", STACK, "--days", "7", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["leads"] == 4 and report["changed_owner"] == 2
    assert report["load"]["katya"] == {"now": 2, "draft": 0} and report["load"]["anna"] == {
        "now": 2,
        "draft": 4,
    }


def test_whatif_says_how_many_leads_the_draft_would_let_breach_the_sla(prod, tmp_path, capsys):
    from zoneinfo import ZoneInfo

    store = LeadStore(prod.table("LeadsTable"))
    local_noon = datetime.now(ZoneInfo("Asia/Krasnoyarsk")).replace(hour=12, minute=0) - timedelta(days=2)
    for i in range(3):  # the salon is open at noon every day: Anna or Katya answers at once
        at = local_noon + timedelta(minutes=i)
        store.create(lead(f"S{i}", status="assigned", owner="anna", service="manicure", branch="center",
                          received_at=at, last_message_at=at))  # fmt: skip
    marina = "{id: marina, name: Марина, role: manager, branch: center, capacity: 50}"
    # The draft gives manicure to the manager, and lets her take no leads: each one waits past its SLA.
    text = SALON.read_text(encoding="utf-8").replace(marina, marina.replace("50", "0"))
    text = text.replace(
        "routing:\n",
        "routing:\n  - {name: nails-to-marina, match: {service: manicure}, assign_to: [marina]}\n",
    )
    draft = tmp_path / "draft.yaml"
    draft.write_text(text)
    assert main(["whatif", str(draft), "--stack", STACK, "--days", "7"]) == 0
    assert "would breach the SLA: 0 → 3 (S0, S1, S2)" in capsys.readouterr().out


def test_whatif_refuses_a_bad_draft_with_its_line(prod, tmp_path, capsys):
    draft = tmp_path / "draft.yaml"
    draft.write_text("timezone: Asia/Krasnoyarsk\nservices: nope\n")
    assert main(["whatif", str(draft), "--stack", STACK]) == 1
    assert "line 2" in capsys.readouterr().err


def test_panel_link_points_at_the_deployed_stack(prod, capsys):
    assert main(["panel-link", "elena", "--stack", STACK]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith(WEBHOOK_BASE.removesuffix("/webhooks") + "/panel/login?t=")
    assert main(["panel-link", "ghost", "--stack", STACK]) == 1


def test_panel_link_uses_the_stacks_public_address(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with deployed_stack("salon-own-domain", {"PublicBaseUrl": "https://leads.example.ru"}):
        assert main(["panel-link", "elena", "--stack", "salon-own-domain"]) == 0
    assert capsys.readouterr().out.startswith("https://leads.example.ru/panel/login?t=")
