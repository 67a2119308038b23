"""kpi.compute_kpis on a hand-built day: every figure worked out by hand."""

from __future__ import annotations

from leadflow.domain.kpi import compute_kpis
from tests.support.builders import KRASNOYARSK
from tests.support.day import tuesday


def test_day_totals():
    k = compute_kpis(tuesday(), tz=KRASNOYARSK)
    assert k["leads"] == 6
    # first replies 5, 10, 20, 30, 40 s: median 20; p90 = 30 + 0.6 × 10 (linear between ranks)
    assert k["first_response_s"] == {"p50": 20.0, "p90": 36.0}
    # acceptance 120, 600, 1200 s: p90 = 600 + 0.8 × 600
    assert k["acceptance_s"] == {"p50": 600.0, "p90": 1080.0}
    # 5 target leads (one not_target), 3 of them booked
    assert (k["booked"], k["conversion"]) == (3, 0.6)
    # of 2 settled visits (visited, no_show) one did not come
    assert (k["no_show"], k["no_show_rate"]) == (1, 0.5)
    # 4 owned target leads, one breached its SLA
    assert (k["sla_breaches"], k["sla_breach_rate"]) == (1, 0.25)
    assert k["confirmed"] == 1
    assert k["temperature"] == {"hot": 2, "warm": 2, "cold": 2}
    assert k["by_hour"] == {10: 2, 12: 2, 18: 2}  # local hours, not UTC


def test_by_channel():
    telegram = compute_kpis(tuesday())["by_channel"]["telegram"]
    assert telegram == {
        "leads": 2, "first_response_s": {"p50": 15.0, "p90": 19.0}, "acceptance_s": {"p50": 360.0, "p90": 552.0},
        "booked": 2, "conversion": 1.0, "no_show": 1, "no_show_rate": 0.5, "sla_breaches": 0,
        "sla_breach_rate": 0.0,
    }  # fmt: skip
    by_channel = compute_kpis(tuesday())["by_channel"]
    assert list(by_channel) == ["form", "instagram", "telegram", "vk", "whatsapp"]
    assert by_channel["whatsapp"]["sla_breach_rate"] == 1.0
    assert by_channel["vk"]["conversion"] == 0.0 and by_channel["vk"]["first_response_s"]["p50"] is None
    assert by_channel["instagram"]["conversion"] is None  # no target lead: no rate, not 0


def test_by_source_and_specialist():
    k = compute_kpis(tuesday())
    assert {name: (v["leads"], v["booked"]) for name, v in k["by_source"].items()} == {
        "instagram": (1, 1), "yandex": (1, 1), "—": (4, 1)}  # fmt: skip
    assert {name: v["leads"] for name, v in k["by_owner"].items()} == {
        "anna": 2,
        "katya": 1,
        "olga": 1,
        "—": 2,
    }
    anna = k["by_owner"]["anna"]
    assert (anna["acceptance_s"]["p50"], anna["no_show_rate"], anna["sla_breach_rate"]) == (360.0, 0.5, 0.0)
    assert k["by_owner"]["katya"]["sla_breach_rate"] == 1.0


def test_no_leads_gives_empty_figures_not_errors():
    k = compute_kpis([])
    assert (k["leads"], k["conversion"], k["first_response_s"]["p50"], k["by_channel"]) == (0, None, None, {})
