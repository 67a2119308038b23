"""`make demo` as a newcomer reads it: it ends well, every card is printed whole once per person,
and what it quotes as shown to a client or a staff member holds no identifier from the code."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

import pytest

from leadflow.business import load_business_config
from leadflow.domain.models import Intent, LeadStatus, Temperature
from leadflow_local.demo import CARD_KINDS, KIND_WORDS
from leadflow_local.stack import EXAMPLE_CONFIG

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> str:
    result = subprocess.run([sys.executable, "-m", "leadflow_local.cli", "demo"], cwd=tmp_path_factory.mktemp("demo"),
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_the_demo_ends_well_and_quietly(demo):
    assert demo.rstrip().endswith("leadflow demo: done")
    for noise in ("Traceback", '{"level"', "failed:", "acceptance p50", "Exception"):
        assert noise not in demo


def test_each_persons_card_of_a_lead_is_printed_whole_once(demo):
    people = re.split(
        r"\n  (?=\S)", demo.split("What the staff received in Telegram", 1)[1].split("\nLeads (", 1)[0]
    )
    assert len(people) > 2
    printed: Counter[str] = Counter()
    for section in people:
        headers = Counter(re.findall(r"│ Лид (L\w+) ·", section))
        assert all(times == 1 for times in headers.values()), section
        printed.update(headers)
    assert len(printed) >= 5  # every target lead's card, somewhere
    assert "not connected to the bot yet (written staff:" in demo  # what staff:<id> means, in words


def test_quoted_lines_hold_no_identifier_from_the_code(demo):
    quoted = [line.partition("│ ")[2] for line in demo.splitlines() if "│ " in line]
    assert len(quoted) > 40
    business = load_business_config(EXAMPLE_CONFIG)
    identifiers = {*LeadStatus, *Intent, *Temperature, *KIND_WORDS, *CARD_KINDS}
    identifiers |= {s.id for s in business.services}
    identifiers |= {s.id for s in business.staff} | {b.id for b in business.branches}
    for line in quoted:
        words = set(re.findall(r"[A-Za-z_]+", line))
        assert not words & {str(i) for i in identifiers}, line
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", line), line
