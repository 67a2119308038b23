"""One Bitrix24 budget shared by every container (GCRA over one DynamoDB item), on moto.

Each "container" is its own SharedRateLimiter with its own boto3 client, as separate Lambdas
would be; nothing but the DynamoDB item connects them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import boto3
import pytest

from leadflow import wiring
from leadflow.adapters.crm.bitrix24 import Bitrix24Error
from leadflow.adapters.rate_limit import RateLimited, SharedRateLimiter, TokenBucket, limiter_key
from leadflow.business import parse_business_config
from tests.support.aws import atomic_moto_writes
from tests.support.bitrix24 import make_client

TABLE = "RateLimitTable"
PORTAL = "https://salon.bitrix24.ru"


class FakeClock:
    """Wall-clock seconds that move only when someone sleeps (or the test says so)."""

    def __init__(self, *, sleeping_moves_time: bool = True) -> None:
        self.now = 1_773_000_000.0
        self.moves = sleeping_moves_time

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if self.moves:
            self.now += seconds


class Container:
    """A limiter with its own DynamoDB client, and a count of the requests that client sends."""

    def __init__(self, clock: FakeClock | None = None, *, rate: float = 2.0, burst: int = 50, **kwargs):
        client = boto3.session.Session().client("dynamodb", region_name="eu-central-1")
        self.requests: Counter[str] = Counter()
        client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: self.requests.update([model.name])
        )
        if clock is not None:
            kwargs.update(clock=clock, sleep=clock.sleep)
        self.limiter = SharedRateLimiter(client, TABLE, PORTAL, rate, burst, **kwargs)

    def acquire(self) -> float:
        return self.limiter.acquire()


def stored_tat() -> float:
    item = boto3.client("dynamodb", region_name="eu-central-1").get_item(
        TableName=TABLE, Key={"pk": {"S": limiter_key(PORTAL)}}
    )["Item"]
    return float(item["tat"]["N"])


def test_the_burst_is_free_then_requests_are_spaced_at_the_rate_one_dynamodb_request_each(aws):
    clock = FakeClock()
    container = Container(clock)

    waits = [container.acquire() for _ in range(54)]

    assert waits[:50] == [0] * 50
    assert waits[50:] == pytest.approx([0.5] * 4)
    assert clock.now == pytest.approx(1_773_000_002.0, abs=1e-3)
    assert container.requests == {"UpdateItem": 54}  # one conditional write per grant, no reads


def test_containers_spend_one_budget_and_a_blind_start_costs_one_retry(aws):
    clock = FakeClock()
    first, second = Container(clock), Container(clock)

    for _ in range(30):
        assert first.acquire() == 0
    for _ in range(20):
        assert second.acquire() == 0  # the 20 that are left of the burst of 50
    after_burst = [first.acquire(), second.acquire()]

    assert after_burst == pytest.approx([0.5, 0.5])  # not 20 more free ones for `first`
    # `second` started thinking the budget idle: its write was refused with the current value (no
    # read) and retried from it. `first` missed 20 grants but the budget was busy: DynamoDB added
    # its interval to the stored value, no conflict.
    assert (first.limiter.conflicts, second.limiter.conflicts) == (0, 1)
    assert first.requests == {"UpdateItem": 31} and second.requests == {"UpdateItem": 21 + 1}


def test_a_long_wait_is_refused_as_retryable_without_spending_the_budget(aws):
    clock = FakeClock(sleeping_moves_time=False)  # callers that arrive together
    first, second, third = (Container(clock, max_wait_s=1.0) for _ in range(3))
    assert second.acquire() == 0  # what `second` will remember: one slot taken
    for _ in range(49):
        first.acquire()
    assert first.acquire() == pytest.approx(0.5)  # the 51st: reserved, the next caller queues behind it
    sent = first.requests["UpdateItem"]

    for container in (first, second, third):  # up to date, a stale view, a blind start
        with pytest.raises(RateLimited) as refused:
            container.acquire()
        assert (refused.value.code, refused.value.retryable) == ("CLIENT_RATE_LIMIT", True)
    assert first.requests["UpdateItem"] == sent  # it knew already: refused without asking DynamoDB

    clock.now += 1.0
    assert third.acquire() == 0  # the refusals took no slot


def test_query_limit_exceeded_from_the_portal_makes_every_container_wait(aws, classic_portal):
    clock = FakeClock()
    shared = SharedRateLimiter(
        boto3.client("dynamodb", region_name="eu-central-1"),
        TABLE,
        PORTAL,
        2,
        50,
        clock=clock,
        sleep=clock.sleep,
    )
    client = make_client(classic_portal, rate_limiter=shared)
    elsewhere = Container(clock)
    assert client.call("crm.settings.mode.get") == 1
    assert elsewhere.acquire() == 0

    classic_portal.fail_next(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
    with pytest.raises(Bitrix24Error) as failure:
        client.call("crm.settings.mode.get")

    assert failure.value.code == "QUERY_LIMIT_EXCEEDED" and failure.value.retryable
    # The portal's bucket is full: tat = now + burst/rate.
    assert stored_tat() == pytest.approx(clock.now + 25, abs=1e-3)
    assert elsewhere.acquire() == pytest.approx(0.5)  # a container that never saw the 503 waits too


def test_a_drain_never_moves_the_budget_back(aws):
    clock = FakeClock(sleeping_moves_time=False)
    first, second = Container(clock, max_wait_s=100), Container(clock, max_wait_s=100)
    for _ in range(60):
        first.acquire()  # tat = now + 30: further than a drain's now + 25

    second.limiter.drain()

    assert stored_tat() == pytest.approx(clock.now + 30, abs=1e-3)


def test_containers_in_parallel_never_exceed_burst_plus_rate_times_elapsed(aws):
    # Given six containers at once against a 40/s, burst 5 budget, each with its own DynamoDB client
    rate, burst = 40.0, 5

    def container(clock: ReadingClock) -> SharedRateLimiter:
        client = boto3.session.Session().client("dynamodb", region_name="eu-central-1")
        return SharedRateLimiter(client, TABLE, PORTAL, rate, burst, max_wait_s=2.0, clock=clock)

    with atomic_moto_writes():
        grants, refused, conflicts = run_containers(container)

    # Then no window holds more than the budget allows
    assert len(grants) + len(refused) == 6 * 12
    assert len(grants) >= 60
    assert all(e.code == "CLIENT_RATE_LIMIT" and e.retryable for e in refused)
    assert worst_excess(grants, rate, burst) <= 1e-3  # times are stored to the microsecond
    # First writes that guessed "idle" conflict and are retried; queueing at the ceiling, DynamoDB
    # adds the interval to the stored value, so nearly every grant is one request (a read-modify-write
    # retry loop made about one conflict per grant here).
    assert 0 < conflicts < len(grants) / 4


def test_per_container_buckets_overshoot_the_same_budget():
    # The same check over today's behaviour, a bucket per container: it fails by a wide margin.
    rate, burst = 40.0, 5
    grants, _, _ = run_containers(lambda clock: TokenBucket(rate, burst, max_wait_s=2.0, clock=clock))

    assert worst_excess(grants, rate, burst) >= 20


class ReadingClock:
    """Real wall-clock time that remembers its last reading: that reading plus the wait acquire()
    returns is the moment the limiter released the request (what its guarantee is about; when the
    thread then gets to run is up to the scheduler)."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self) -> float:
        self.last = time.time()
        return self.last


def run_containers(make, *, containers: int = 6, each: int = 12):
    grants: list[float] = []
    refused: list[RateLimited] = []
    limiters = []
    start = threading.Barrier(containers)
    lock = threading.Lock()

    def container() -> None:
        clock = ReadingClock()
        limiter = make(clock)
        with lock:
            limiters.append(limiter)
        start.wait()
        for _ in range(each):
            try:
                wait = limiter.acquire()
            except RateLimited as exc:
                with lock:
                    refused.append(exc)
                continue
            with lock:
                grants.append(clock.last + wait)

    threads = [threading.Thread(target=container) for _ in range(containers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(grants), refused, sum(getattr(limiter, "conflicts", 0) for limiter in limiters)


def worst_excess(times: list[float], rate: float, burst: int) -> float:
    """Most grants over ``burst + rate * window`` in any window between two grants."""
    return max(
        (j - i + 1) - (burst + rate * (times[j] - times[i]))
        for i in range(len(times))
        for j in range(i, len(times))
    )


def test_a_lost_table_falls_back_to_pacing_this_process_alone(aws):
    fallback = TokenBucket(2, 50)
    shared = SharedRateLimiter(
        boto3.client("dynamodb", region_name="eu-central-1"), "NoSuchTable", PORTAL, 2, 50, fallback=fallback
    )

    assert shared.acquire() == 0

    assert fallback.tokens == pytest.approx(49, abs=0.1)


def test_every_function_gets_the_shared_limiter_when_the_stack_has_the_table(
    aws, monkeypatch, classic_portal
):
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", classic_portal.webhook_url)
    monkeypatch.delenv("RATE_LIMIT_TABLE", raising=False)
    wiring.reset()
    assert isinstance(wiring.crm().client.limiter, TokenBucket)  # no table: per process

    monkeypatch.setenv("RATE_LIMIT_TABLE", TABLE)
    wiring.reset()
    limiter = wiring.crm().client.limiter
    wiring.crm().client.call("crm.settings.mode.get")

    assert isinstance(limiter, SharedRateLimiter)
    assert wiring.make_crm(wiring.business()).client.limiter is limiter  # one per portal per process
    items = boto3.client("dynamodb", region_name="eu-central-1").scan(TableName=TABLE)["Items"]
    assert len(items) == 1 and "127.0.0.1" not in str(items)  # keyed by a hash, not the address


def test_an_enterprise_portal_gets_its_own_limit_from_the_business_config(aws, monkeypatch, classic_portal):
    business = parse_business_config(
        "timezone: Europe/Moscow\nservices: []\ncrm: {requests_per_s: 5, burst: 250}\n"
    )
    monkeypatch.setenv("RATE_LIMIT_TABLE", TABLE)
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", classic_portal.webhook_url)
    wiring.reset()
    limiter = wiring.make_crm(business).client.limiter
    assert isinstance(limiter, SharedRateLimiter)
    assert (limiter.interval, limiter.tolerance) == (0.2, 50.0)  # 5/s, 250 in a burst


# ------------------------------------------------------------------ YDB's Document API (Yandex Cloud)
# ReturnValuesOnConditionCheckFailure is not documented there: a conflict reads the item instead.


class DocumentApiContainer(Container):
    """A container on Yandex Cloud: no ReturnValuesOnConditionCheckFailure is ever sent."""

    def __init__(self, clock: FakeClock | None = None, **kwargs):
        super().__init__(clock, conflict_returns_item=False, **kwargs)
        self.sent_params: list[dict] = []
        self.limiter._dynamodb.meta.events.register(
            "provide-client-params.dynamodb.UpdateItem",
            lambda params, **_: self.sent_params.append(dict(params)),
        )


def test_on_the_document_api_a_blind_start_reads_the_item_after_its_conflict(aws):
    clock = FakeClock()
    first, second = DocumentApiContainer(clock), DocumentApiContainer(clock)
    for _ in range(30):
        assert first.acquire() == 0
    for _ in range(20):
        assert second.acquire() == 0
    after_burst = [first.acquire(), second.acquire()]

    assert after_burst == pytest.approx([0.5, 0.5])
    assert (first.limiter.conflicts, second.limiter.conflicts) == (0, 1)
    assert first.requests == {"UpdateItem": 31}
    assert second.requests == {"UpdateItem": 21 + 1, "GetItem": 1}  # the one conflict, then one read
    assert all("ReturnValuesOnConditionCheckFailure" not in p for p in first.sent_params + second.sent_params)
    assert all("SET tat = tat +" not in p["UpdateExpression"] for p in first.sent_params)  # ADD, documented


def test_on_the_document_api_containers_in_parallel_still_keep_the_budget(aws):
    rate, burst = 40.0, 5

    def container(clock: ReadingClock) -> SharedRateLimiter:
        client = boto3.session.Session().client("dynamodb", region_name="eu-central-1")
        return SharedRateLimiter(
            client, TABLE, PORTAL, rate, burst, max_wait_s=2.0, clock=clock, conflict_returns_item=False
        )

    with atomic_moto_writes():
        grants, refused, conflicts = run_containers(container)

    assert len(grants) + len(refused) == 6 * 12 and len(grants) >= 60
    assert worst_excess(grants, rate, burst) <= 1e-3
    assert 0 < conflicts < len(grants) / 4


def test_a_yandex_deployment_gets_the_limiter_that_reads_after_a_conflict(aws, monkeypatch, classic_portal):
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", classic_portal.webhook_url)
    monkeypatch.setenv("RATE_LIMIT_TABLE", TABLE)
    monkeypatch.setenv("LEADFLOW_PLATFORM", "yandex")
    wiring.reset()
    limiter = wiring.crm().client.limiter
    assert isinstance(limiter, SharedRateLimiter) and not limiter._conflict_returns_item
    assert wiring.crm().client.call("crm.settings.mode.get") == 1
