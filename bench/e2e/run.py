"""End-to-end benchmark on the local stack: leads across every channel through the gateway.

Replays a Saturday-morning stream (bench/e2e/traffic.py) — or, with --rate, a steady Poisson
stream — as signed webhooks against ``LocalStack`` (emulator, gateway, pollers, scheduler)
with the offline engine, then reports: webhook-to-first-reply latency and where it goes
(gateway, queue wait, score; route after it: bench/e2e/stages.py), leads/s through
ingest → score → route, AWS requests per lead by service, DynamoDB capacity units (estimated,
see meter.py), Lambda durations per function, and the cost per 1,000 leads (bench/e2e/cost.py).

    .venv/bin/python -m bench.e2e.run [--leads 2000] [--duration 90] [--json OUT.json]
    .venv/bin/python -m bench.e2e.run --rate 10 --duration 60     # a steady offered rate
    .venv/bin/python -m bench.e2e.run --find-max [--duration 30]  # highest rate with p95 ≤ 3 s
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.e2e.meter import Meter, gsi_hash_keys, invoking
from bench.e2e.stages import Stages, digits
from bench.e2e.traffic import delivery, make_leads, steady_leads

COMMAND = "python -m bench.e2e.run"
P95_LIMIT_MS = 3000  # "sustained": first reply p95 within this
FIND_MAX_RATES = (4, 6, 8, 10, 12, 15, 18, 21, 25, 30)
# The stack must behave as in AWS: offline engine, no real API, no CRM portal.
UNSET = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TELEGRAM_BOT_TOKEN", "WHATSAPP_TOKEN", "INSTAGRAM_TOKEN",
         "VK_TOKEN", "BITRIX24_WEBHOOK_URL", "LEADFLOW_CLOCK_SPEED", "LEADFLOW_CLOCK_START")  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def saturday_morning(tz_name: str) -> datetime:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(tz_name)
    today = datetime.now(tz).date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    return datetime(saturday.year, saturday.month, saturday.day, 9, 55, tzinfo=tz)


def run(leads: list, duration_s: float, workers: int = 32, flavor: str = "aws") -> dict[str, Any]:
    import boto3

    for name in UNSET:
        os.environ.pop(name, None)
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # EMF lines on stdout would drown the figures
    # SMS leads come as SMSC callbacks, which the stack takes when SMS_PROVIDER is smsc; the
    # outbox keeps what would be sent (OUTBOX_ONLY is the name Settings reads)
    os.environ["SMS_PROVIDER"] = "smsc"
    os.environ["OUTBOX_ONLY"] = "true"
    boto3.setup_default_session()
    meter = Meter(gsi_hash_keys())
    meter.install(boto3.DEFAULT_SESSION)
    stages = Stages()

    from bench import BENCH_CONFIG
    from leadflow import clock, wiring
    from leadflow.business import load_business_config
    from leadflow_local.stack import LocalStack, _free_port
    from leadflow_local.webhooks import Webhooks

    n = len(leads)
    business = load_business_config(BENCH_CONFIG)
    state_dir = Path(tempfile.mkdtemp(prefix="leadflow-bench-"))

    def invoked(name: str, event: dict, invocation: Any) -> None:
        meter.merge(name, invocation.duration_ms, invocation.extras)
        stages.invoked(name, event, invocation.started)

    stack = LocalStack(
        port=_free_port(), state_dir=state_dir, clock_start=saturday_morning(business.timezone),
        worker_setup="bench.e2e.meter:in_worker", on_invocation=invoked, flavor=flavor, config_path=BENCH_CONFIG,
    )  # fmt: skip
    with invoking("bench"):
        stack.start()
    meter.set_size_client(boto3.session.Session().client(
        "dynamodb", endpoint_url=stack.emulator.endpoint, region_name="eu-central-1",
        aws_access_key_id="local", aws_secret_access_key="local"))  # fmt: skip
    meter.invocations.clear()
    meter.durations.clear()
    meter.calls.clear()
    meter.rru.clear()
    meter.wru.clear()
    meter.empty_receives = 0
    stages.clear()
    posted_at: dict[int, datetime] = {}
    statuses: dict[int, int] = {}
    local = threading.local()
    secrets = stack.state()["secrets"]
    # The leadflow clock runs at speed 1 from a Saturday morning: one constant offset to wall time.
    clock_offset = clock.now() - datetime.now(UTC)

    def post(lead: Any) -> None:
        import requests

        if not hasattr(local, "hooks"):
            local.hooks = Webhooks(stack.url, secrets, requests.Session())
        delay = start + lead.offset_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        at = clock.now()
        d = delivery(local.hooks, lead, at)
        posted_at[lead.seq] = at
        sent = time.perf_counter()
        statuses[lead.seq] = local.hooks.post(d).status_code
        stages.gateway_s[lead.seq] = time.perf_counter() - sent

    try:
        start = time.monotonic()
        first_post = clock.now()
        with invoking("bench"), ThreadPoolExecutor(workers) as pool:
            list(pool.map(post, leads))
        posted = time.monotonic()
        with invoking("bench"):
            drained = stack.drain(timeout_s=240)
        finished = time.monotonic() - 0.5  # drain waits 0.5 s of quiet before it answers
        wall_s = finished - start
        with invoking("bench"):
            result = collect(leads, posted_at, statuses, first_post, stages, clock_offset)
            meter.settle()
        result.update(
            flavor=flavor, leads=n, replay_s=round(posted - start, 1), wall_s=round(wall_s, 1), drained=drained,
            leads_per_s=round(n / wall_s, 1), offered_per_s=round(n / max(duration_s, 1e-9), 1),
            **usage(meter, n, api_requests=len(statuses)),
        )  # fmt: skip
        return result
    finally:
        stack.stop()
        wiring.reset()


def collect(
    leads: list,
    posted_at: dict[int, datetime],
    statuses: dict[int, int],
    first_post: datetime,
    stages: Stages,
    clock_offset: timedelta,
) -> dict:
    """Match every replayed lead to its stored lead and first reply; latency = reply claimed − POST."""
    from leadflow import wiring
    from leadflow_local.inspect import _scan, all_leads

    def wall(iso: str) -> float:
        return (datetime.fromisoformat(iso) - clock_offset).timestamp()

    stored = all_leads()
    by_user: dict[tuple[str, str], Any] = {}
    for lead in stored:
        by_user[(lead.channel, digits(lead.contact.channel_user_id))] = lead
        by_user.setdefault((lead.channel, digits(lead.contact.phone)), lead)
    replies: dict[str, datetime] = {}
    cards: dict[str, float] = {}
    for item in _scan(wiring.store().conversation.table, FilterExpression="direction = :out AND kind IN (:reply, :card)",
                      ExpressionAttributeValues={":out": "out", ":reply": "reply", ":card": "lead_card"}):  # fmt: skip
        if item["kind"] == "lead_card":
            at_s = wall(item.get("sent_at") or item["claimed_at"])
            cards[item["lead_id"]] = min(cards.get(item["lead_id"], at_s), at_s)
            continue
        at = datetime.fromisoformat(item["claimed_at"])
        if item["lead_id"] not in replies or at < replies[item["lead_id"]]:
            replies[item["lead_id"]] = at
    latencies, missing_lead, missing_reply, unowned = [], 0, 0, 0
    split: dict[str, list[float]] = {"gateway": [], "queue_wait": [], "score": [], "route": []}
    for lead in leads:
        found = by_user.get((lead.channel, digits(lead.user_id)))
        if found is None:
            missing_lead += 1
            continue
        if found.intent != "not_target" and not found.owner:
            unowned += 1
        if lead.seq in stages.gateway_s:
            split["gateway"].append(stages.gateway_s[lead.seq] * 1000)
        reply = replies.get(found.lead_id)
        if reply is None:
            missing_reply += 1
            continue
        latencies.append((reply - posted_at[lead.seq]).total_seconds() * 1000)
        key = (lead.channel, digits(lead.user_id))
        if key in stages.score_started:
            split["queue_wait"].append((stages.score_started[key] - stages.score_enqueued[key]) * 1000)
            split["score"].append((wall(reply.isoformat()) - stages.score_started[key]) * 1000)
        if found.lead_id in cards and found.lead_id in stages.route_enqueued:
            split["route"].append((cards[found.lead_id] - stages.route_enqueued[found.lead_id]) * 1000)
    refused = sum(1 for status in statuses.values() if status != 200)
    return {
        "stored_leads": len(stored), "missing_lead": missing_lead, "missing_reply": missing_reply,
        "unowned": unowned, "refused": refused,
        "latency_ms": {q: round(percentile(latencies, q)) for q in (50, 95, 99)},
        "stages_ms": {name: {q: round(percentile(values, q)) for q in (50, 95)} | {"n": len(values)}
                      for name, values in split.items()},
        "llm_tokens_per_lead": sum(lead.llm_tokens for lead in stored) / max(len(stored), 1),
    }  # fmt: skip


def usage(meter: Meter, n: int, api_requests: int) -> dict:
    functions = ("ingest", "score", "route", "escalate", "remind")
    per_function_calls: dict[str, dict[str, int]] = {}
    for (caller, service, _op), count in meter.calls.items():
        per_function_calls.setdefault(caller, {}).setdefault(service, 0)
        per_function_calls[caller][service] += count
    handler = {
        s: sum(per_function_calls.get(f, {}).get(s, 0) for f in functions) for s in ("sqs", "dynamodb")
    }
    poller_sqs = per_function_calls.get("poller", {}).get("sqs", 0) - meter.empty_receives
    durations = {
        name: {
            "invocations": meter.invocations[name],
            "p50_ms": round(statistics.median(values) * 1000, 1),
            "mean_ms": round(statistics.fmean(values) * 1000, 1),
            "total_s": round(sum(values), 2),
        }
        for name, values in meter.durations.items()
        if values
    }
    return {
        "per_lead": {
            "api_gateway": api_requests / n,
            "lambda_invocations": sum(meter.invocations[f] for f in ("ingest", "score", "route")) / n,
            "sqs_requests": (handler["sqs"] + poller_sqs) / n,
            "sqs_by_handlers": handler["sqs"] / n,
            "sqs_by_event_source_mapping": poller_sqs / n,
            # queue sends by the functions: on Yandex Cloud a failed record is sent again (re-enqueue)
            "queue_sends": sum(
                count
                for (caller, service, op), count in meter.calls.items()
                if caller in functions and service == "sqs" and op in ("SendMessage", "SendMessageBatch")
            )
            / n,
            "dynamodb_requests": handler["dynamodb"] / n,
            "dynamodb_rru": sum(meter.rru[f] for f in functions) / n,
            "dynamodb_wru": sum(meter.wru[f] for f in functions) / n,
        },
        "schedule_fires": {f: meter.invocations[f] for f in ("escalate", "remind")},
        "empty_receives": meter.empty_receives,
        "durations": durations,
        "calls_by_function": per_function_calls,
        "dynamodb_by_function": {
            f: {
                f"{op} {table.removesuffix('Table')}": round(count / n, 2)
                for (caller, op, table), count in sorted(meter.tables.items())
                if caller == f
            }
            for f in functions
        },
        # The panel function's stream consumer (steps/tally.py) keeps the lead facts off the hot path;
        # the local stream reader keeps the template's batching window, as Lambda does.
        "dynamodb_tally_per_lead": sum(
            count
            for (caller, op, table), count in meter.tables.items()
            if caller == "panel" and table == "StatsTable"
        )
        / n,
    }


def report(result: dict, cmd: str) -> None:
    lat = result["latency_ms"]
    p = result["per_lead"]
    print(f"e2e: {result['leads']} leads replayed in {result['replay_s']} s, all done after {result['wall_s']} s "
          f"(drained={result['drained']}); stored leads {result['stored_leads']}, missing {result['missing_lead']}, "
          f"without reply {result['missing_reply']}, without owner {result['unowned']}, refused {result['refused']}")  # fmt: skip
    print(f"e2e: webhook→first reply latency p50 {lat[50]} ms, p95 {lat[95]} ms, p99 {lat[99]} ms   [{cmd}]")
    st = result["stages_ms"]
    print("e2e: first reply by stage: " + ", ".join(
        f"{label} p50 {st[name][50]} ms / p95 {st[name][95]} ms"
        for name, label in (("gateway", "gateway (ingest)"), ("queue_wait", "queue wait"), ("score", "score"))
    ) + f"; then route (LeadReady → card sent) p50 {st['route'][50]} ms / p95 {st['route'][95]} ms   [{cmd}]")  # fmt: skip
    print(f"e2e: throughput {result['leads_per_s']} leads/s through ingest→score→route "
          f"(offered {result['offered_per_s']} leads/s)   [{cmd}]")  # fmt: skip
    print(f"e2e: per lead: API Gateway {p['api_gateway']:.2f}, Lambda {p['lambda_invocations']:.2f}, "
          f"SQS {p['sqs_requests']:.2f} (handlers {p['sqs_by_handlers']:.2f} + event source mapping "
          f"{p['sqs_by_event_source_mapping']:.2f}), DynamoDB {p['dynamodb_requests']:.2f} requests, "
          f"{p['dynamodb_rru']:.2f} RRU, {p['dynamodb_wru']:.2f} WRU (estimated from item sizes)   [{cmd}]")  # fmt: skip
    print(f"e2e: flavour {result['flavor']}: queue sends by the functions {p['queue_sends']:.2f} per lead "
          f"(on yandex, failed records re-enqueued with their attempt count are among them)   [{cmd}]")  # fmt: skip
    for name, ops in result["dynamodb_by_function"].items():
        if ops:
            print(f"e2e: DynamoDB per lead in {name} {sum(ops.values()):.2f}: "
                  + ", ".join(f"{op} {n:.2f}" for op, n in ops.items()))  # fmt: skip
    tally = result["dynamodb_tally_per_lead"]
    print(f"e2e: DynamoDB per lead in the panel's tally (stream consumer) {tally:.2f} UpdateItem; "
          f"with it, DynamoDB requests per lead in all {p['dynamodb_requests'] + tally:.2f}   [{cmd}]")  # fmt: skip
    fires = result["schedule_fires"]
    print(f"e2e: schedule fires during the run: escalate {fires['escalate']}, remind {fires['remind']}; "
          f"empty SQS long-poll receives {result['empty_receives']} (fixed cost, not per lead)")  # fmt: skip
    for name, d in sorted(result["durations"].items()):
        print(f"e2e: lambda {name:<8} {d['invocations']:>5} invocations, p50 {d['p50_ms']} ms, "
              f"mean {d['mean_ms']} ms   [{cmd}]")  # fmt: skip
    print(f"e2e: LLM tokens per lead {result['llm_tokens_per_lead']:.0f} (offline engine)   [{cmd}]")


def sustained(result: dict) -> bool:
    """Every lead answered and first reply p95 within the limit."""
    complete = result["missing_lead"] == 0 and result["missing_reply"] == 0 and result["refused"] == 0
    return complete and result["drained"] and result["latency_ms"][95] <= P95_LIMIT_MS


def find_max(duration_s: float, seed: int) -> int:
    """Step up the offered rate, a fresh stack each time, until first reply p95 passes the limit."""
    best = None
    for rate in FIND_MAX_RATES:
        result = run(steady_leads(rate, duration_s, seed), duration_s)
        lat, ok = result["latency_ms"], sustained(result)
        print(f"e2e: --rate {rate} --duration {duration_s:g}: first reply p50 {lat[50]} ms, p95 {lat[95]} ms, "
              f"{result['leads_per_s']} leads/s done, missing {result['missing_lead'] + result['missing_reply']}"
              f" → {'sustained' if ok else 'NOT sustained'}", flush=True)  # fmt: skip
        if not ok:
            break
        best = rate
    cmd = f"{COMMAND} --find-max --duration {duration_s:g}"
    if best is None:
        print(
            f"e2e: max sustained rate: below {FIND_MAX_RATES[0]} leads/s (first reply p95 ≤ {P95_LIMIT_MS} ms)   [{cmd}]"
        )
    else:
        print(f"e2e: max sustained rate: {best} leads/s with first reply p95 ≤ {P95_LIMIT_MS} ms "
              f"(steps {', '.join(map(str, FIND_MAX_RATES))})   [{cmd}]")  # fmt: skip
    return 0 if best is not None else 1


def main() -> int:
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=2000, help="Saturday-shaped replay of this many leads")
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="replay span in seconds (default leads/25; 60 with --rate)",
    )
    parser.add_argument("--rate", type=float, help="offer a steady stream of this many leads/s instead")
    parser.add_argument("--find-max", action="store_true",
                        help=f"step the rate up ({', '.join(map(str, FIND_MAX_RATES))}) until p95 > {P95_LIMIT_MS} ms")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--flavor", choices=["aws", "yandex"], default="aws",
                        help="the local stack's flavour (leadflow up --flavor)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    if args.find_max:
        return find_max(args.duration or 30, args.seed)
    if args.rate:
        duration = args.duration or 60
        leads = steady_leads(args.rate, duration, args.seed)
        cmd = f"{COMMAND} --rate {args.rate:g} --duration {duration:g}"
    else:
        duration = args.duration if args.duration is not None else args.leads / 25
        leads = make_leads(args.leads, duration, args.seed)
        cmd = f"{COMMAND} --leads {args.leads}" + (f" --duration {duration:g}" if args.duration else "")
    if args.flavor != "aws":
        cmd += f" --flavor {args.flavor}"
    result = run(leads, duration, flavor=args.flavor)
    report(result, cmd)
    from bench.e2e.cost import cost_table, print_cost

    costs = cost_table(result)
    print_cost(costs, cmd)
    if args.json:
        args.json.write_text(
            json.dumps({"e2e": result, "cost": costs}, default=str, indent=1), encoding="utf-8"
        )
    ok = result["missing_lead"] == 0 and result["missing_reply"] == 0 and result["refused"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
