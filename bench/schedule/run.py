"""The escalate job's cost against what is stored: 1,000 / 10,000 / 100,000 open leads' SLA
timers, of which 100 are due. Counts DynamoDB requests and items read per run (botocore event
hooks; the queries' Count and ScannedCount) — both must stay flat as the table grows, because
the job asks the ``due`` index for what is due and never scans.

    .venv/bin/python bench/schedule/run.py [--sizes 1000,10000,100000] [--due 100]

Run time is printed for information only (moto in-process, not DynamoDB). The 100 due timers
point at leads that were closed meanwhile, so each costs the full claim → read lead → cancel
path without sending anything; the other timers are due tomorrow.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

NOW = datetime(2026, 3, 17, 3, 0, tzinfo=UTC)  # Tuesday 10:00 in Krasnoyarsk
REGION = "eu-central-1"


class DynamoCounter:
    """Counts requests by operation and the items they read or returned."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.items = 0  # items returned to us (Items of a query, Item of a get)
        self.scanned = 0  # ScannedCount of queries: what DynamoDB read (and bills)

    def before(self, model, **_: object) -> None:
        self.requests[model.name] += 1

    def after(self, model, parsed, **_: object) -> None:
        if "Count" in parsed:
            self.items += int(parsed["Count"])
            self.scanned += int(parsed.get("ScannedCount", parsed["Count"]))
        elif parsed.get("Item"):
            self.items += 1
            self.scanned += 1


def fill(client, size: int, due: int) -> None:
    """``size`` SLA timers straight into the table with batch_write_item, ``due`` of them due now."""
    future = (NOW + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    past = (NOW - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    batch = []
    for n in range(size):
        batch.append({"PutRequest": {"Item": {
            "timer_id": {"S": f"sla#L{n:012d}"}, "queue": {"S": "escalate"}, "kind": {"S": "sla"},
            "due_at": {"S": past if n < due else future}, "lead_id": {"S": f"L{n:012d}"},
            "step": {"N": "0"}, "attempts": {"N": "0"}, "data": {"M": {}},
        }}})  # fmt: skip
        if len(batch) == 25:
            client.batch_write_item(RequestItems={"TimersTable": batch})
            batch = []
    if batch:
        client.batch_write_item(RequestItems={"TimersTable": batch})


def measure(size: int, due: int) -> dict:
    import boto3
    from moto import mock_aws

    from bench import BENCH_CONFIG
    from leadflow import wiring
    from leadflow_local.stack import create_queues, create_tables
    from leadflow_local.template import load_template

    with mock_aws():
        template = load_template()
        raw = boto3.client("dynamodb", region_name=REGION)
        create_tables(raw, template)
        urls = create_queues(boto3.client("sqs", region_name=REGION), template)
        os.environ.update({"ROUTE_QUEUE_URL": urls["RouteQueue"], "SCORE_QUEUE_URL": urls["ScoreQueue"]})
        wiring.reset()
        store = wiring.store()
        store.config.put(BENCH_CONFIG.read_text(encoding="utf-8"))
        started = time.perf_counter()
        fill(raw, size, due)
        fill_s = time.perf_counter() - started
        job = wiring.escalate_step()
        counter = DynamoCounter()
        events = store.leads.table.meta.client.meta.events
        events.register("before-call.dynamodb", counter.before)
        events.register("after-call.dynamodb", counter.after)
        started = time.perf_counter()
        worked = job.run(NOW)
        run_s = time.perf_counter() - started
        again = DynamoCounter()  # the next minute: nothing due any more
        events.unregister("before-call.dynamodb", counter.before)
        events.unregister("after-call.dynamodb", counter.after)
        events.register("before-call.dynamodb", again.before)
        events.register("after-call.dynamodb", again.after)
        job.run(NOW + timedelta(minutes=1))
        wiring.reset()
    return {"size": size, "worked": worked, "requests": sum(counter.requests.values()),
            "by_op": dict(counter.requests), "items": counter.items, "scanned": counter.scanned,
            "idle_requests": sum(again.requests.values()), "idle_scanned": again.scanned,
            "run_s": run_s, "fill_s": fill_s}  # fmt: skip


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--due", type=int, default=100)
    args = parser.parse_args()
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                        "AWS_DEFAULT_REGION": REGION, "POWERTOOLS_METRICS_DISABLED": "true",
                        "POWERTOOLS_LOG_LEVEL": "WARNING"}.items():  # fmt: skip
        os.environ.setdefault(name, value)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"command: .venv/bin/python bench/schedule/run.py --sizes {args.sizes} --due {args.due}")
    print(f"{'stored timers':>14} {'worked':>7} {'requests':>9} {'items read':>11} {'scanned':>8} "
          f"{'idle req':>9} {'idle scanned':>13} {'run s':>7} {'fill s':>7}  requests by operation")  # fmt: skip
    results = []
    for size in sizes:
        r = measure(size, args.due)
        results.append(r)
        print(f"{r['size']:>14,} {r['worked']:>7} {r['requests']:>9} {r['items']:>11} {r['scanned']:>8} "
              f"{r['idle_requests']:>9} {r['idle_scanned']:>13} {r['run_s']:>7.2f} {r['fill_s']:>7.1f}  "
              f"{r['by_op']}", flush=True)  # fmt: skip
    base, top = results[0], results[-1]
    ratio_requests = top["requests"] / base["requests"]
    ratio_items = top["scanned"] / base["scanned"]
    print(f"{top['size']:,}/{base['size']:,} ratio: requests {ratio_requests:.3f}, items read {ratio_items:.3f} "
          f"(target ≤ 1.05)")  # fmt: skip
    return 0 if max(ratio_requests, ratio_items) <= 1.05 else 1


if __name__ == "__main__":
    raise SystemExit(main())
