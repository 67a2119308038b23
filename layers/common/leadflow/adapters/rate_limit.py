"""Request budgets for an outside API (the Bitrix24 portal's 2 requests/s, burst 50; amoCRM's 7/s;
Google Sheets' 60 requests a minute per service account).

``TokenBucket`` paces one process. ``SharedRateLimiter`` makes every container and function spend
one budget: GCRA over one DynamoDB item. Both answer ``acquire()`` (wait for a slot, or raise
``RateLimited`` when the wait would be long) and ``drain()`` (the API said its budget is spent).
Neither does I/O when built: the DynamoDB client comes from the caller (``leadflow.wiring``).

Why shared: SQS scales route out to as many containers as it likes, and escalate and remind call
the portal too. A token bucket in each process adds their budgets up and overshoots the portal's (503
QUERY_LIMIT_EXCEEDED, redelivery, in the end the DLQ). So the budget lives in DynamoDB as one
number per portal, its *theoretical arrival time* (GCRA, virtual scheduling): a request may go
when ``new_tat = max(tat, now) + 1/rate`` keeps ``new_tat - now <= burst/rate``, and stores
``new_tat``. Any window of L seconds then holds at most ``burst + rate * L`` requests, whoever
sends them.

One conditional UpdateItem per request, and no reads: the tat this process saw last picks the
write. Busy (tat >= now), DynamoDB adds 1/rate to the stored tat itself (``ADD``, which YDB's
Document API documents too, where arithmetic inside ``SET`` is not), so containers queueing at the
ceiling never conflict; idle, the write sets now + 1/rate if the stored tat is still past. A
wrong guess fails its condition, whose answer carries the current value
(ReturnValuesOnConditionCheckFailure), and the next attempt starts from it (bounded). tat never
moves backwards, so the value seen is a lower bound: a wait that is already too long is refused
without asking DynamoDB. The functions need UpdateItem on the table and nothing else — on AWS.
YDB's Document API does not document ReturnValuesOnConditionCheckFailure, so on Yandex Cloud
(``conflict_returns_item=False``) a conflict is followed by one strongly consistent GetItem.

Time is wall-clock epoch seconds (``time.time``), never ``time.monotonic`` (its origin differs per
machine) nor ``leadflow.clock`` (the local stack runs it fast with --speed; the portal counts real
seconds). Hosts keep wall clocks NTP-synchronised; a skew of d lets at most rate * d extra through.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)

# How long a request may wait for its slot in the portal-wide schedule. The wait is exact (the slot
# is reserved), and a refusal sends the message around the queue (6 minutes, one of 5 receives),
# so a few seconds of a 60 s Lambda are better spent here than the 1 s a local guess gets.
SHARED_MAX_WAIT_S = 5.0


class RateLimited(Exception):
    """The budget is empty for longer than a caller should wait: nothing was sent, try later."""

    code = "CLIENT_RATE_LIMIT"
    retryable = True

    def __init__(self, description: str):
        super().__init__(f"{self.code}: {description}")
        self.description = description


class RateLimiter(Protocol):
    """What a client asks before each request: TokenBucket (one process) or SharedRateLimiter."""

    def acquire(self) -> float: ...

    def drain(self) -> None: ...


class TokenBucket:
    """Client-side mirror of the portal's leaky bucket: ``rate_per_s`` refill, ``burst`` capacity.

    A short wait (< ``max_wait_s``) is cheaper than a failed request; a long one would hold a
    Lambda for nothing, so it is refused and the message goes back to the queue.
    """

    def __init__(
        self,
        rate_per_s: float = 2.0,
        burst: int = 50,
        *,
        max_wait_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def acquire(self) -> float:
        """Take one token, waiting briefly if needed; returns the wait. Raises when the wait is long."""
        with self._lock:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            wait = (1 - self._tokens) / self.rate_per_s
            if wait >= self.max_wait_s:
                raise RateLimited(f"local request budget empty for {wait:.1f}s")
            # Reserve the token now so concurrent callers queue behind this one.
            self._tokens -= 1
        self._sleep(wait)
        return wait

    def drain(self) -> None:
        """The portal said QUERY_LIMIT_EXCEEDED: its bucket is fuller than ours thought."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 0.0)


_BUCKETS: dict[tuple[str, float, int], TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def shared_bucket(portal_key: str, rate_per_s: float, burst: int) -> TokenBucket:
    """One bucket per portal per process: a warm Lambda that builds a client per invocation
    still spends one budget. Processes share nothing: see ``portal_limiter`` for that."""
    key = (portal_key, rate_per_s, burst)
    with _BUCKETS_LOCK:
        bucket = _BUCKETS.get(key)
        if bucket is None:
            bucket = _BUCKETS[key] = TokenBucket(rate_per_s, burst)
        return bucket


OTHER_CRMS = ("amocrm", "sheets")  # their budgets are keyed "<kind>:<account>" (wiring.crm_limiter)


def limiter_key(portal_key: str) -> str:
    """The item's key: the CRM's kind and a hash, so the table holds no account address."""
    kind, _, _ = portal_key.partition(":")
    prefix = kind if kind in OTHER_CRMS else "bitrix24"
    return f"{prefix}#" + hashlib.sha256(portal_key.encode()).hexdigest()[:16]


def _number(value: float) -> str:
    return f"{value:.6f}"


class SharedRateLimiter:
    """``acquire()`` and ``drain()`` like TokenBucket, against one item shared by every process."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        portal_key: str,
        rate_per_s: float = 2.0,
        burst: int = 50,
        *,
        max_wait_s: float = 1.0,
        max_attempts: int = 4,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        fallback: RateLimiter | None = None,
        conflict_returns_item: bool = True,
    ):
        self._dynamodb = dynamodb  # a boto3 DynamoDB client
        self._conflict_returns_item = conflict_returns_item
        self._table = table
        self._key = {"pk": {"S": limiter_key(portal_key)}}
        self.interval = 1.0 / rate_per_s
        self.tolerance = burst / rate_per_s
        self.max_wait_s = max_wait_s
        self.max_attempts = max_attempts
        self._clock = clock
        self._sleep = sleep
        # DynamoDB unreachable: pace this process alone (today's behaviour) rather than stop the CRM.
        self._fallback = fallback or TokenBucket(rate_per_s, burst, max_wait_s=max_wait_s)
        self._seen: float | None = None  # the stored tat as last seen (it only ever grows)
        self._lock = threading.Lock()  # threads of one process queue here instead of conflicting
        self.conflicts = 0

    def acquire(self) -> float:
        """Reserve the next slot, waiting for it if that is short; returns the wait."""
        try:
            with self._lock:
                wait = self._reserve()
        except (BotoCoreError, ClientError) as exc:
            log.warning("shared Bitrix24 budget unavailable (%s): pacing this process alone", _code(exc))
            return self._fallback.acquire()
        if wait > 0:
            self._sleep(wait)
        return wait

    def _reserve(self) -> float:
        for _ in range(self.max_attempts):
            now = self._clock()
            seen = self._seen if self._seen is not None else 0.0
            wait = max(max(seen, now) + self.interval - now - self.tolerance, 0.0)
            if wait >= self.max_wait_s:
                raise RateLimited(f"shared request budget empty for {wait:.1f}s")
            if seen >= now:
                # Busy: new_tat = tat + 1/rate, added by DynamoDB itself, so containers queueing at
                # the ceiling never conflict; the condition keeps the wait short.
                limit = now + self.tolerance + self.max_wait_s - self.interval
                tat = self._update(
                    "ADD tat :interval",
                    "tat >= :now AND tat < :limit",
                    {":interval": _number(self.interval), ":now": _number(now), ":limit": _number(limit)},
                )
            else:
                # Idle (as far as we know): the slot is now + 1/rate, whatever past tat is stored.
                tat = self._update(
                    "SET tat = :tat",
                    "attribute_not_exists(tat) OR tat < :now",
                    {":tat": _number(now + self.interval), ":now": _number(now)},
                )
            if tat is not None:
                return max(tat - now - self.tolerance, 0.0)
        raise RateLimited(f"shared request budget contended {self.max_attempts} times")

    def drain(self) -> None:
        """The portal said QUERY_LIMIT_EXCEEDED: its bucket is full, so everyone's next request waits."""
        floor = _number(self._clock() + self.tolerance)
        try:
            with self._lock:
                self._update(
                    "SET tat = :floor", "attribute_not_exists(tat) OR tat < :floor", {":floor": floor}
                )
        except (BotoCoreError, ClientError) as exc:
            log.warning("shared Bitrix24 budget unavailable (%s): draining this process only", _code(exc))
            self._fallback.drain()

    def _update(self, update: str, condition: str, values: dict[str, str]) -> float | None:
        """One conditional write; the stored tat after it, or None on a conflict (the current value,
        learned from the answer, is what the next attempt starts from)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key,
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {name: {"N": value} for name, value in values.items()},
            "ReturnValues": "UPDATED_NEW",
        }
        if self._conflict_returns_item:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            answer = self._dynamodb.update_item(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            self.conflicts += 1
            item = exc.response.get("Item") if self._conflict_returns_item else self._read()
            stored = (item or {}).get("tat", {}).get("N")
            self._seen = float(stored) if stored is not None else None
            return None
        self._seen = float(answer["Attributes"]["tat"]["N"])
        return self._seen

    def _read(self) -> dict[str, Any] | None:
        """The item as it is now (after a conflict, where the answer does not carry it)."""
        answer = self._dynamodb.get_item(TableName=self._table, Key=self._key, ConsistentRead=True)
        item: dict[str, Any] | None = answer.get("Item")
        return item


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


_LIMITERS: dict[tuple[str, str, float, int], SharedRateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def portal_limiter(
    portal_key: str,
    rate_per_s: float,
    burst: int,
    *,
    dynamodb: Any = None,
    table: str | None = None,
    conflict_returns_item: bool = True,
) -> RateLimiter:
    """The limiter every client of this portal in this process uses: shared through ``table`` (with
    the caller's DynamoDB client) when the stack has one — every function in AWS and in the local
    stack — else one in-process bucket (tests, benches). ``conflict_returns_item=False`` on YDB's
    Document API (see the module's docstring)."""
    if dynamodb is None or not table:
        return shared_bucket(portal_key, rate_per_s, burst)
    key = (table, portal_key, rate_per_s, burst)
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = SharedRateLimiter(
                dynamodb,
                table,
                portal_key,
                rate_per_s,
                burst,
                max_wait_s=SHARED_MAX_WAIT_S,
                fallback=shared_bucket(portal_key, rate_per_s, burst),
                conflict_returns_item=conflict_returns_item,
            )
        return limiter


def reset() -> None:
    """Forget the limiters (their DynamoDB clients point at the endpoint of the time)."""
    with _LIMITERS_LOCK:
        _LIMITERS.clear()
