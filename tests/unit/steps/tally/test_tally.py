"""The tally: lead facts kept per day from the leads table's stream, through the real panel handler
on the in-process AWS (moto's stream, delivered as Lambda's event source mapping would)."""

from __future__ import annotations

import copy
import functools
import random
from datetime import UTC, date, datetime, timedelta

import boto3
import pytest

from leadflow import wiring
from leadflow.adapters.store.stats import PK, shard_of, sort_key
from leadflow.domain import lifecycle
from leadflow.domain.facts import fact_of
from leadflow.domain.kpi import compute_kpis
from leadflow.steps.tally import Tally
from leadflow_local.functions import invoke
from leadflow_local.streams import stream_event, streams_client
from tests.support.aws import REGION
from tests.support.builders import KRASNOYARSK, lead

DAY = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)


def stats_item(aws, day: date, lead_id: str) -> dict:
    table = boto3.resource("dynamodb", region_name=REGION).Table("StatsTable")
    return table.get_item(Key={"pk": PK, "sk": sort_key(day, shard_of(lead_id))}).get("Item") or {}


def stream_records() -> tuple[str, list[dict]]:
    """Every record of the leads table's stream so far (without delivering them)."""
    arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName="LeadsTable")["Table"][
        "LatestStreamArn"
    ]
    streams = streams_client(functools.partial(boto3.client, region_name=REGION))
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return arn, streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]


def facts_of_day(aws, day: date) -> dict:
    return {f.lead_id: f for f in aws.store.stats.between(day, day)}


def test_every_change_of_a_lead_reaches_its_fact(aws):
    aws.store.leads.create(lead("L1", received_at=DAY))
    aws.store.leads.create(lead("L2", received_at=DAY + timedelta(hours=2), channel="whatsapp"))
    aws.store.leads.change("L1", lambda x: lifecycle.assign(x, "anna", "rule", DAY + timedelta(minutes=1)))
    assert aws.deliver_streams() == 3
    facts = facts_of_day(aws, DAY.date())
    assert facts == {"L1": fact_of(aws.store.leads.get("L1")), "L2": fact_of(aws.store.leads.get("L2"))}
    assert facts["L1"].owner == "anna" and facts["L1"].version == 1


def test_two_images_of_one_lead_in_a_batch_the_newest_wins_whatever_the_order(aws):
    aws.store.leads.create(lead("L1", received_at=DAY))
    aws.store.leads.change("L1", lambda x: lifecycle.assign(x, "anna", "rule", DAY))
    arn, records = stream_records()
    assert len(records) == 2
    assert invoke("panel", stream_event(records, arn, REGION)) == {"batchItemFailures": []}
    assert facts_of_day(aws, DAY.date())["L1"].owner == "anna"
    backwards = stream_event(list(reversed(records)), arn, REGION)  # an older image last
    assert invoke("panel", backwards) == {"batchItemFailures": []}
    assert facts_of_day(aws, DAY.date())["L1"].owner == "anna"


def test_a_redelivered_batch_changes_nothing(aws):
    for n in range(5):
        aws.store.leads.create(lead(f"L{n}", received_at=DAY + timedelta(minutes=n)))
    aws.store.leads.change("L3", lambda x: lifecycle.assign(x, "olga", "rule", DAY))
    arn, records = stream_records()
    event = stream_event(records, arn, REGION)
    invoke("panel", copy.deepcopy(event))
    before = {n: stats_item(aws, DAY.date(), f"L{n}") for n in range(5)}
    invoke("panel", copy.deepcopy(event))  # Lambda retries a batch after a timeout, say
    assert {n: stats_item(aws, DAY.date(), f"L{n}") for n in range(5)} == before
    assert len(facts_of_day(aws, DAY.date())) == 5


def test_a_deleted_lead_leaves_the_numbers(aws):
    aws.store.leads.create(lead("L1", received_at=DAY))
    aws.store.leads.create(lead("L2", received_at=DAY))
    aws.deliver_streams()
    aws.store.leads.table.delete_item(Key={"lead_id": "L1"})
    aws.deliver_streams()
    assert set(facts_of_day(aws, DAY.date())) == {"L2"}


def test_an_anonymised_lead_keeps_counting_without_its_name_and_phone(aws):
    aws.store.leads.create(lead("L1", received_at=DAY, contact={"name": "Ирина", "phone": "+79135550101"}))
    aws.deliver_streams()
    assert facts_of_day(aws, DAY.date())["L1"].phone == "+79135550101"
    aws.store.leads.change("L1", lifecycle.anonymised)
    aws.deliver_streams()
    fact = facts_of_day(aws, DAY.date())["L1"]
    assert (fact.name, fact.phone) == (None, None)
    assert "Ирина" not in str(stats_item(aws, DAY.date(), "L1"))


def test_an_unreadable_record_is_reported_not_raised_and_what_came_before_is_written(aws):
    for n in range(3):
        aws.store.leads.create(lead(f"L{n}", received_at=DAY))
    arn, records = stream_records()
    broken = copy.deepcopy(records)
    del broken[1]["dynamodb"]["NewImage"]["received_at"]
    answer = invoke("panel", stream_event(broken, arn, REGION))
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}]}
    assert set(facts_of_day(aws, DAY.date())) == {"L0"}  # L1 and L2 come again with the retry


def test_a_write_that_fails_is_reported_by_its_first_record(aws, monkeypatch):
    aws.store.leads.create(lead("L1", received_at=DAY))
    arn, records = stream_records()
    monkeypatch.setenv("STATS_TABLE", "NoSuchTable")
    wiring.reset()
    answer = invoke("panel", stream_event(records, arn, REGION))
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}


def test_the_rebuild_fills_in_what_the_stream_never_saw_and_keeps_what_it_did(aws):
    """A stack upgraded with leads stored: their facts come from the by_day index."""
    for n in range(4):
        aws.store.leads.create(lead(f"L{n}", received_at=DAY - timedelta(days=n)))
    arn, records = stream_records()
    invoke("panel", stream_event(records[:1], arn, REGION))  # the stream saw L0 only…
    aws.store.leads.change("L0", lambda x: lifecycle.assign(x, "anna", "rule", DAY))  # …and not yet this
    stale = facts_of_day(aws, DAY.date())["L0"]
    done = Tally(aws.store.stats).rebuild(aws.store.leads, (DAY - timedelta(days=5)).date(), DAY.date())
    assert done == 4
    every = {f.lead_id: f for f in aws.store.stats.between((DAY - timedelta(days=5)).date(), DAY.date())}
    assert set(every) == {"L0", "L1", "L2", "L3"}
    assert every["L0"] == stale  # only missing facts are written: the stream brings L0's change
    aws.deliver_streams()
    assert facts_of_day(aws, DAY.date())["L0"].owner == "anna"


STATUSES = ["new", "assigned", "accepted", "booked", "confirmed", "visited", "no_show", "lost", "not_target"]


def random_leads(seed: int, count: int) -> list:
    rnd = random.Random(seed)
    leads = []
    for n in range(count):
        received = DAY - timedelta(days=rnd.randint(0, 9), minutes=rnd.randint(0, 1440))
        fields = {
            "received_at": received, "last_message_at": received,
            "channel": rnd.choice(["telegram", "whatsapp", "vk", "form", "call"]),
            "status": rnd.choice(STATUSES), "intent": rnd.choice(["booking", "question", "not_target"]),
            "temperature": rnd.choice(["hot", "warm", "cold", None]), "owner": rnd.choice(["anna", "olga", None]),
            "branch": rnd.choice(["center", "north", None]), "source": rnd.choice(["site", "ads", None]),
            "utm": {"source": rnd.choice(["yandex", "vk", None]), "campaign": rnd.choice(["spring", "march8", None])},
            "tags": ["sla_breached"] if rnd.random() < 0.2 else [],
        }  # fmt: skip
        if rnd.random() < 0.8:
            fields["first_reply_at"] = received + timedelta(seconds=rnd.uniform(1, 900))
        if rnd.random() < 0.5:
            fields["accepted_at"] = received + timedelta(seconds=rnd.uniform(30, 7200))
        if rnd.random() < 0.3:
            fields["appointment_at"] = received + timedelta(days=2)
        leads.append(lead(f"R{n}", **fields))
    return leads


@pytest.mark.parametrize("seed", [7, 18])
def test_numbers_from_stored_facts_equal_numbers_from_the_leads(aws, seed):
    leads = random_leads(seed, 150)
    for item in leads:
        assert aws.store.leads.create(item)
    aws.deliver_streams()
    facts = aws.store.stats.between((DAY - timedelta(days=10)).date(), DAY.date())
    assert len(facts) == len(leads)
    assert compute_kpis(facts, tz=KRASNOYARSK) == compute_kpis(leads, tz=KRASNOYARSK)


def test_a_change_no_number_shows_writes_nothing(aws):
    aws.store.leads.create(lead("L1", received_at=DAY))
    aws.deliver_streams()
    aws.store.leads.change(
        "L1", lambda x: x.model_copy(update={"recent_texts": ["ещё вопрос"], "card": "1:2"})
    )
    writes = []
    events = wiring.dynamodb().meta.client.meta.events
    events.register("before-call.dynamodb.UpdateItem", lambda **kw: writes.append(1), unique_id="count")
    try:
        assert aws.deliver_streams() == 1
    finally:
        events.unregister("before-call.dynamodb.UpdateItem", unique_id="count")
    assert writes == []
    aws.store.leads.change("L1", lambda x: lifecycle.assign(x, "anna", "rule", DAY))  # this one shows
    aws.deliver_streams()
    assert facts_of_day(aws, DAY.date())["L1"].owner == "anna"
