"""Round-robin under concurrency: 100 routes at once over 5 specialists, on moto.

Each route runs in its own thread with its own boto3 session (as concurrent Lambdas would), so
only the atomic DynamoDB updates (ticket counter, conditional capacity) keep them apart.

moto applies an update as an unlocked read-modify-write: 100 concurrent ``ADD n :one`` gave 30
distinct values in-process and 96 on ThreadedMotoServer. DynamoDB applies every single-item write
atomically and answers with that write's values, so the fixture below gives moto that guarantee
and nothing more (one lock per write request, its answer copied under the lock); reads and
everything in leadflow stay concurrent."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from leadflow import clock
from leadflow.adapters.store.staff import StaffStore
from leadflow.domain.assignment import choose_owner
from leadflow.domain.rules import LeadFacts
from tests.support.aws import atomic_moto_writes
from tests.support.builders import KRS, business, lead, moment

ROUTES = 100
SPECIALISTS = ["s1", "s2", "s3", "s4", "s5"]


def salon(capacity: int):
    staff = "\n".join(
        f"  - {{id: {s}, name: {s}, skills: [nails], capacity: {capacity}}}" for s in SPECIALISTS
    )
    return business(
        f"""
timezone: Asia/Krasnoyarsk
services: [{{id: manicure, name: Маникюр, group: nails}}]
staff:
{staff}
  - {{id: boss, name: Босс, role: manager, capacity: 1000}}
"""
    )


@pytest.fixture
def atomic_item_writes(aws):
    with atomic_moto_writes():
        yield aws


def route_concurrently(aws, capacity: int) -> Counter[str]:
    cfg = salon(capacity)
    clock.freeze(moment(KRS, "2026-03-16 12:00"))
    now = clock.now()
    start = threading.Barrier(ROUTES)

    def one(i: int) -> str:
        table = boto3.session.Session().resource("dynamodb", region_name="eu-central-1").Table("StaffTable")
        staff = StaffStore(table)
        start.wait()
        return choose_owner(lead(f"L{i}", service="manicure"), LeadFacts(), cfg, staff, now, None).owner

    with ThreadPoolExecutor(max_workers=ROUTES) as pool:
        return Counter(pool.map(one, range(ROUTES)))


def stored_open_leads(aws) -> dict[str, int]:
    state = aws.store.staff.state([*SPECIALISTS, "boss"])
    return {s: state[s].open_leads for s in state}


@pytest.mark.timeout(120)
def test_100_concurrent_routes_split_evenly_over_5_specialists(atomic_item_writes):
    aws = atomic_item_writes
    counts = route_concurrently(aws, capacity=30)
    per_person = [counts[s] for s in SPECIALISTS]
    assert sum(per_person) == ROUTES and "boss" not in counts
    assert max(per_person) - min(per_person) <= 1
    assert stored_open_leads(aws) == {**dict.fromkeys(SPECIALISTS, 20), "boss": 0}


@pytest.mark.timeout(120)
def test_capacity_is_never_exceeded_under_concurrency(atomic_item_writes):
    aws = atomic_item_writes
    # Given 5 specialists who can hold 15 leads each, and 100 leads at once
    counts = route_concurrently(aws, capacity=15)
    # Then each holds exactly 15, and the 25 left over go to the manager, none unassigned
    assert {s: counts[s] for s in SPECIALISTS} == dict.fromkeys(SPECIALISTS, 15)
    assert counts["boss"] == ROUTES - 75
    assert stored_open_leads(aws) == {**dict.fromkeys(SPECIALISTS, 15), "boss": 25}
