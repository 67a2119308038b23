"""What a page costs: Сводка and Заявки read the period's lead facts (one Query of the stats
table), so their DynamoDB requests grow with the days shown, not with the leads stored."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from urllib.parse import urlencode

from leadflow import wiring
from tests.support.aws import deliver_streams
from tests.support.builders import lead
from tests.unit.steps.panel.test_panel import NOW, call, login


def seed(aws, count: int, days: int, first: int = 0) -> None:
    for n in range(first, first + count):
        at = NOW - timedelta(days=n % days, minutes=n)
        owner = ("anna", "olga", "katya")[n % 3]
        aws.store.leads.create(lead(f"S{n:04d}", received_at=at, last_message_at=at, owner=owner,
                                    channel=("telegram", "whatsapp")[n % 2], branch="center"))  # fmt: skip
    deliver_streams()


def requests_of(path: str, query: str, cookie: str) -> tuple[dict, Counter]:
    """The page, and its DynamoDB requests as (operation, table) counts (botocore's parameter hook)."""
    deliver_streams()  # nothing of the stream's work is billed to the page
    seen: Counter = Counter()

    def count(model, params, **_):
        seen[(model.name, params.get("TableName"), params.get("IndexName"))] += 1

    events = wiring.dynamodb().meta.client.meta.events
    events.register("before-parameter-build.dynamodb", count, unique_id="page-cost")
    try:
        page = call("GET", path, query=query, cookie=cookie)
    finally:
        events.unregister("before-parameter-build.dynamodb", unique_id="page-cost")
    return page, seen


def test_the_summary_costs_the_same_for_40_leads_and_for_400(panel_aws):
    cookie = login(panel_aws, "vera")
    seed(panel_aws, 40, days=30)
    few_page, few = requests_of("/panel/summary", "period=30", cookie)
    seed(panel_aws, 360, days=30, first=40)
    many_page, many = requests_of("/panel/summary", "period=30", cookie)
    assert re.search(r'id="kpi-leads">40<', few_page["body"])
    assert re.search(r'id="kpi-leads">400<', many_page["body"])
    assert many == few
    assert many[("Query", "StatsTable", None)] == 1  # the 32 days' facts in one Query
    assert not any(table == "LeadsTable" for _, table, _ in many)  # no lead is read
    assert sum(many.values()) <= 5


def test_the_leads_list_costs_the_same_whatever_the_leads_and_pages_through_them(panel_aws):
    cookie = login(panel_aws, "vera")
    seed(panel_aws, 20, days=7)
    _, few = requests_of("/panel/leads", "period=7", cookie)
    seed(panel_aws, 100, days=7, first=20)
    first, many = requests_of("/panel/leads", "period=7", cookie)
    assert many == few and not any(table == "LeadsTable" for _, table, _ in many)
    assert "(120)" in first["body"]
    rows = re.findall(r'href="/panel/leads/(S\d+)"', first["body"])
    assert len(rows) == 50
    newest = sorted((f"S{n:04d}" for n in range(120)), key=lambda i: (int(i[1:]) % 7, int(i[1:])))
    assert rows == newest[:50]  # newest first: the fewest days back, then the fewest minutes
    assert "page=2" in first["body"]
    last = call("GET", "/panel/leads", query=urlencode({"period": "7", "page": 3}), cookie=cookie)["body"]
    assert re.findall(r'href="/panel/leads/(S\d+)"', last) == newest[100:]
    assert "page=4" not in last


def test_the_list_filters_and_the_specialists_view_come_from_the_facts(panel_aws):
    seed(panel_aws, 30, days=7)
    anna = login(panel_aws, "anna")
    own = re.findall(
        r'href="/panel/leads/(S\d+)"', call("GET", "/panel/leads", query="period=7", cookie=anna)["body"]
    )
    assert own and all(int(i[1:]) % 3 == 0 for i in own) and len(own) == 10
    vera = login(panel_aws, "vera")
    whatsapp = call("GET", "/panel/leads", query="period=7&channel=whatsapp", cookie=vera)["body"]
    assert set(re.findall(r'href="/panel/leads/(S\d+)"', whatsapp)) == {f"S{n:04d}" for n in range(1, 30, 2)}


def test_on_yandex_where_no_stream_keeps_facts_the_pages_count_the_leads(panel_aws, monkeypatch):
    monkeypatch.setenv("LEADFLOW_PLATFORM", "yandex")
    wiring.reset()
    cookie = login(panel_aws, "vera")
    seed(panel_aws, 12, days=7)
    page, seen = requests_of("/panel/summary", "period=7", cookie)
    assert re.search(r'id="kpi-leads">12<', page["body"])
    assert ("Query", "StatsTable", None) not in seen
    assert seen[("Query", "LeadsTable", "by_day")] == 9  # a day each, one more each side
