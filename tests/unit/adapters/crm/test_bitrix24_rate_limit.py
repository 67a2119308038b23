"""The client's token bucket and the portal's leaky bucket."""

from __future__ import annotations

import threading
import time

import pytest

from leadflow import wiring
from leadflow.adapters.crm.bitrix24 import Bitrix24Error
from leadflow.adapters.rate_limit import RateLimited, TokenBucket
from leadflow.business import parse_business_config
from tests.support.bitrix24 import make_client, make_lead


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_burst_is_free_then_requests_are_spaced_at_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(2, 50, clock=clock, sleep=clock.sleep)

    for _ in range(50):
        assert bucket.acquire() == 0
    waits = [bucket.acquire() for _ in range(4)]

    assert waits == pytest.approx([0.5, 0.5, 0.5, 0.5])
    assert clock.now == pytest.approx(1002.0)


def test_enterprise_limits_refill_faster():
    clock = FakeClock()
    bucket = TokenBucket(5, 250, clock=clock, sleep=clock.sleep)
    for _ in range(250):
        bucket.acquire()

    assert bucket.acquire() == pytest.approx(0.2)


def test_a_long_wait_is_refused_as_retryable_instead_of_holding_the_lambda():
    clock = FakeClock()
    bucket = TokenBucket(2, 2, clock=clock, sleep=lambda s: None)  # callers that arrive together
    bucket.acquire()
    bucket.acquire()
    assert bucket.acquire() == pytest.approx(0.5)  # reserved: the next caller queues behind it

    with pytest.raises(RateLimited) as failure:
        bucket.acquire()
    assert failure.value.retryable and failure.value.code == "CLIENT_RATE_LIMIT"

    clock.now += 1.0
    assert bucket.acquire() == 0  # refilled


def test_the_portal_answers_503_past_its_bucket_and_the_client_backs_off(classic_portal):
    client = make_client(classic_portal, rate_limiter=TokenBucket(1000, 1000))  # a client without manners

    with pytest.raises(Bitrix24Error) as failure:
        for _ in range(60):
            client.call("crm.settings.mode.get")

    assert (failure.value.status, failure.value.code, failure.value.retryable) == (
        503,
        "QUERY_LIMIT_EXCEEDED",
        True,
    )
    assert 50 <= len(classic_portal.http_methods) < 60  # the bucket drains 2/s while we hammer
    assert client.limiter.tokens < 1  # drained: the next call waits instead of hammering


def test_a_client_within_the_limit_never_sees_query_limit_exceeded(portal_factory):
    portal = portal_factory(mode=1, rate_per_s=20, burst=5)
    client = make_client(portal, rate_limiter=TokenBucket(20, 5))
    started = time.monotonic()

    for _ in range(15):
        client.call("crm.settings.mode.get")

    assert not portal.rejected
    assert time.monotonic() - started >= (15 - 5) / 20 * 0.9


def test_clients_of_one_portal_share_one_budget_in_a_warm_process(classic_portal, monkeypatch):
    monkeypatch.delenv("RATE_LIMIT_TABLE", raising=False)
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", classic_portal.webhook_url)
    wiring.reset()
    business = parse_business_config(
        "timezone: Europe/Moscow\nservices: []\ncrm: {requests_per_s: 3.5, burst: 7}\n"
    )

    first, second = wiring.make_crm(business), wiring.make_crm(business)

    assert first.client is not second.client
    assert first.client.limiter is second.client.limiter


def test_threads_pushing_at_once_stay_within_the_portal_limit(portal_factory):
    portal = portal_factory(mode=1, rate_per_s=20, burst=4)
    bucket = TokenBucket(20, 4)
    errors: list[Exception] = []

    def worker(offset: int) -> None:
        client = make_client(portal, rate_limiter=bucket)
        for n in range(3):
            try:
                client.push([make_lead(offset + n)])
            except Bitrix24Error as exc:  # a long local wait is allowed to refuse
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k * 100,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not portal.rejected
    assert all(isinstance(e, Bitrix24Error) and e.code == "CLIENT_RATE_LIMIT" for e in errors)
