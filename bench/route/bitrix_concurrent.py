"""Route containers at once against one Bitrix24 portal: a budget each (today) vs one shared budget.

Each container is a thread with its own Bitrix24Client (its own HTTP session and limiter) taking
route batches (template.yaml's RouteFunction BatchSize, ``--group`` to try another) from one queue,
as SQS hands batches to concurrent Lambdas. A group that fails
with a retryable error is received again after ``--redelivery-s`` (the visibility timeout, scaled
down from 360 s: the portal refills far less in between, so the DLQ figure is pessimistic); after
5 receives it goes to the dead-letter queue. The fake portal enforces the cloud limit (2 req/s,
burst 50) and answers 503 QUERY_LIMIT_EXCEEDED past it.

- bucket per container: TokenBucket(2, 50) in every process — what each Lambda has today;
- shared: SharedRateLimiter in every container over one item in DynamoDB (moto server, the table
  from template.yaml), the limiter every function gets when RATE_LIMIT_TABLE is set.

    .venv/bin/python bench/route/bitrix_concurrent.py [--leads 1500] [--containers 6] [--group N] [--redelivery-s 4]
"""

from __future__ import annotations

import argparse
import logging
import random
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MAX_RECEIVES = 5  # template.yaml: RouteQueue maxReceiveCount


class Queue:
    """SQS in miniature: receive (invisible while in flight), settle, redeliver later, dead-letter."""

    def __init__(self, groups: list[list[Any]], redelivery_s: float):
        self._waiting: list[tuple[float, list[Any], int]] = [(0.0, g, 0) for g in groups]
        self._in_flight = 0
        self._cond = threading.Condition()
        self.redelivery_s = redelivery_s
        self.redeliveries = 0
        self.dead: list[Any] = []

    def receive(self) -> tuple[list[Any], int] | None:
        """The next visible group and its receive count; None when every group is settled."""
        with self._cond:
            while True:
                now = time.monotonic()
                for i, (visible_at, group, receives) in enumerate(self._waiting):
                    if visible_at <= now:
                        del self._waiting[i]
                        self._in_flight += 1
                        return group, receives + 1
                if not self._waiting and not self._in_flight:
                    return None
                soonest = min((v for v, _, _ in self._waiting), default=now + 1.0)
                self._cond.wait(max(soonest - now, 0.01))

    def settle(self, failed: list[Any], receives: int) -> None:
        with self._cond:
            self._in_flight -= 1
            if failed and receives < MAX_RECEIVES:
                self.redeliveries += 1
                self._waiting.append((time.monotonic() + self.redelivery_s, failed, receives))
            else:
                self.dead.extend(failed)
            self._cond.notify_all()


@dataclass
class RunResult:
    leads: int
    elapsed_s: float = 0.0
    delivered: int = 0
    http_requests: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    refused: int = 0  # CLIENT_RATE_LIMIT: the limiter said no, nothing was sent
    redeliveries: int = 0
    dead: int = 0
    lost: int = 0
    doubled: int = 0
    dynamodb_requests: int = 0
    conflicts: int = 0


def run(
    leads: list[Any], containers: int, group: int, redelivery_s: float, make_limiter: Callable[[], Any]
) -> RunResult:
    import requests

    from leadflow.adapters.crm.bitrix24 import Bitrix24Client, Bitrix24Error
    from tests.fakes.bitrix24_server import Bitrix24Portal

    result = RunResult(len(leads))
    queue = Queue([leads[i : i + group] for i in range(0, len(leads), group)], redelivery_s)
    delivered: set[str] = set()
    lock = threading.Lock()
    limiters: list[Any] = []

    with Bitrix24Portal(mode=1) as portal:

        def container() -> None:
            limiter = make_limiter()
            with lock:
                limiters.append(limiter)
            client = Bitrix24Client(
                portal.webhook_url, requests.Session(), limiter, mode="classic", timeout_s=5
            )
            while (received := queue.receive()) is not None:
                batch, receives = received
                try:
                    outcomes = client.push(batch, after_unknown_outcome=receives > 1)
                except Bitrix24Error as exc:
                    if exc.code == "CLIENT_RATE_LIMIT":
                        with lock:
                            result.refused += 1
                    queue.settle(batch, receives if exc.retryable else MAX_RECEIVES)
                    continue
                again = [
                    lead for lead, o in zip(batch, outcomes, strict=True) if o.error and o.crm_id is None
                ]
                with lock:
                    delivered.update(o.origin_id for o in outcomes if o.crm_id)
                queue.settle(again, receives)

        started = time.monotonic()
        threads = [threading.Thread(target=container) for _ in range(containers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result.elapsed_s = time.monotonic() - started

        records = Counter(str(r.get("ORIGIN_ID")) for r in portal.portal.leads.values())
        result.http_requests = len(portal.server.requests)
        result.rejected = Counter(code for _, code in portal.rejected)
    result.delivered = len(delivered)
    result.redeliveries = queue.redeliveries
    result.dead = len(queue.dead)
    result.lost = sum(1 for lead in leads if not records[lead.origin_id])
    result.doubled = sum(1 for count in records.values() if count > 1)
    result.conflicts = sum(getattr(limiter, "conflicts", 0) for limiter in limiters)
    return result


def make_leads(count: int, seed: int) -> list[Any]:
    from leadflow.adapters.crm.bitrix24 import CrmLead

    rng = random.Random(seed)
    leads = []
    for n in range(count):
        phone = None if rng.random() < 0.25 else f"+79{n:09d}"  # messenger leads often have no phone
        leads.append(
            CrmLead(
                origin_id=f"lead-{n:05d}",
                title=f"Заявка {n}",
                name="Клиент",
                phone=phone,
                source_id="WEB",
                utm={"source": "instagram", "campaign": "spring"},
                assigned_by_id=rng.choice([1, 2, 3]),
                comments="Запись на стрижку",
            )
        )
    return leads


def moto_server() -> tuple[Any, str]:
    """moto's server in this process with template.yaml's tables; its writes made atomic per item."""
    import boto3
    from moto.server import ThreadedMotoServer

    from leadflow_local.stack import create_tables
    from leadflow_local.template import load_template

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    create_tables(dynamodb_client(endpoint, boto3), load_template())
    return server, endpoint


def dynamodb_client(endpoint: str, boto3: Any) -> Any:
    return boto3.session.Session().client(
        "dynamodb", endpoint_url=endpoint, region_name="eu-central-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
    )  # fmt: skip


def main() -> int:
    sys.path.insert(0, str(ROOT))  # the repo root: tests.fakes, tests.unit.adapters.crm.support
    import boto3

    from leadflow.adapters.rate_limit import SHARED_MAX_WAIT_S, SharedRateLimiter, TokenBucket
    from leadflow_local.template import load_template
    from tests.support.aws import atomic_moto_writes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1500)  # 120 requests: well past the burst of 50
    parser.add_argument("--containers", type=int, default=6)
    [route_source] = load_template().functions()["route"].sqs_sources
    parser.add_argument(
        "--group", type=int, default=int(route_source["batch_size"]), help="leads per route batch"
    )
    parser.add_argument("--redelivery-s", type=float, default=4.0)
    parser.add_argument(
        "--max-wait-s", type=float, default=SHARED_MAX_WAIT_S, help="shared limiter's wait cap"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the client's per-failure warnings are expected here
    logging.getLogger("leadflow").setLevel(logging.ERROR)  # the local stack's import set it to INFO
    leads = make_leads(args.leads, args.seed)
    portal_key = "bench-portal"

    local = run(leads, args.containers, args.group, args.redelivery_s, lambda: TokenBucket(2, 50))

    server, endpoint = moto_server()
    try:
        dynamodb_calls: Counter[str] = Counter()

        def shared_limiter() -> SharedRateLimiter:
            client = dynamodb_client(endpoint, boto3)
            client.meta.events.register(
                "before-call.dynamodb", lambda model, **_: dynamodb_calls.update([model.name])
            )
            return SharedRateLimiter(client, "RateLimitTable", portal_key, 2, 50, max_wait_s=args.max_wait_s)

        with atomic_moto_writes():
            shared = run(leads, args.containers, args.group, args.redelivery_s, shared_limiter)
        shared.dynamodb_requests = sum(dynamodb_calls.values())
    finally:
        server.stop()

    command = (
        f".venv/bin/python bench/route/bitrix_concurrent.py --leads {args.leads} --containers {args.containers}"
        f" --group {args.group}"
        f" --redelivery-s {args.redelivery_s:g} --max-wait-s {args.max_wait_s:g}"
    )
    print(
        f"bitrix_concurrent: {args.leads} leads in groups of {args.group}, {args.containers} containers, "
        f"portal 2 req/s burst 50, redelivery after {args.redelivery_s:g} s, DLQ after {MAX_RECEIVES} receives"
    )
    print(f"  command: {command}")
    rows = [
        ("", "bucket per container", "shared (DynamoDB GCRA)"),
        ("leads in the CRM", f"{local.delivered} of {args.leads}", f"{shared.delivered} of {args.leads}"),
        ("elapsed, s", f"{local.elapsed_s:.1f}", f"{shared.elapsed_s:.1f}"),
        ("limiter refusals (nothing sent)", str(local.refused), str(shared.refused)),
        ("queue redeliveries", str(local.redeliveries), str(shared.redeliveries)),
        ("dead-lettered leads", str(local.dead), str(shared.dead)),
        ("DynamoDB requests per Bitrix24 request", "-", f"{shared.dynamodb_requests / max(shared.http_requests, 1):.2f}"
         f" ({shared.conflicts} conflicts retried)"),
        ("leads/s delivered", f"{local.delivered / local.elapsed_s:.2f}", f"{shared.delivered / shared.elapsed_s:.2f}"),
        ("portal rejections (503)", str(local.rejected["QUERY_LIMIT_EXCEEDED"]), str(shared.rejected["QUERY_LIMIT_EXCEEDED"])),
        ("HTTP requests per lead (503s included)", f"{local.http_requests / args.leads:.3f}",
         f"{shared.http_requests / args.leads:.3f}"),
        ("lost leads / with two CRM records", f"{local.lost} / {local.doubled}", f"{shared.lost} / {shared.doubled}"),
    ]  # fmt: skip
    for label, a, b in rows:
        print(f"  {label:<40} {a:>22} {b:>30}")
    ok = shared.lost == 0 and shared.doubled == 0 and local.doubled == 0
    print("  verdict:", "OK" if ok else "FAILED", "(shared: nothing lost, nothing doubled)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
