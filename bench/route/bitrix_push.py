"""Push 2,000 leads to a fake Bitrix24 portal that enforces the cloud limit (2 req/s, burst 50).

Leads arrive in route batches of template.yaml's RouteFunction BatchSize (``--group`` to try
another); a batch that fails with a retryable error goes back to the queue and is redelivered after
a backoff, flagged as a redelivery, as SQS would do. Faults are injected on the way (500s, answers
lost after the portal applied the batch, timeouts) into ``--fault-rate`` of the pushes.

Prints Bitrix24 requests per lead (one lead at a time vs batched) and per route batch, leads/s over
the run and after the burst, and checks that no lead was lost and no CRM record was made twice.

    .venv/bin/python bench/route/bitrix_push.py [--leads 2000] [--group N] [--mode classic|simple] [--seed 7]
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: tests.fakes
    import requests

    from leadflow.adapters.crm.bitrix24 import Bitrix24Client, Bitrix24Error, CallbackTask, CrmLead
    from leadflow.adapters.rate_limit import TokenBucket
    from leadflow_local.template import load_template
    from tests.fakes.bitrix24_server import Bitrix24Portal

    [route_source] = load_template().functions()["route"].sqs_sources

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument(
        "--group", type=int, default=int(route_source["batch_size"]), help="leads per route batch"
    )
    parser.add_argument("--mode", choices=["classic", "simple"], default="classic")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fault-rate", type=float, default=0.03, help="share of requests that fail")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the client's per-failure warnings are expected here
    logging.getLogger("leadflow").setLevel(logging.ERROR)  # one INFO line per push otherwise
    rng = random.Random(args.seed)
    portal_mode = 1 if args.mode == "classic" else 2

    def make_leads(count: int, prefix: str) -> list[CrmLead]:
        leads = []
        phones: list[str] = []
        for n in range(count):
            roll = rng.random()
            if roll < 0.25:
                phone = None  # messenger leads often come without a phone
            elif roll < 0.30 and phones:
                phone = rng.choice(phones)  # a client who writes again
            else:
                phone = f"+79{rng.randrange(10**9):09d}"
                phones.append(phone)
            callback = None
            if rng.random() < 0.5:
                callback = CallbackTask(datetime.now(UTC) + timedelta(minutes=15), "Перезвонить", 5)
            leads.append(
                CrmLead(
                    origin_id=f"{prefix}-{n:05d}",
                    title=f"Заявка {n}",
                    name="Клиент",
                    phone=phone,
                    source_id="WEB",
                    utm={"source": "instagram", "campaign": "spring"},
                    assigned_by_id=rng.choice([1, 2, 3]),
                    comments="Запись на стрижку",
                    callback=callback,
                )
            )
        return leads

    # ---------------------------------------------------------------- one lead at a time
    sample = make_leads(10, "single")
    with Bitrix24Portal(mode=portal_mode) as portal:
        client = Bitrix24Client(portal.webhook_url, requests.Session(), TokenBucket(2, 50), mode=args.mode)
        for lead in sample:
            client.push([lead])
        push_single = len(portal.server.requests) / len(sample)
    with Bitrix24Portal(mode=portal_mode) as portal:
        # the plain way: one REST call per step, no batch
        client = Bitrix24Client(portal.webhook_url, requests.Session(), TokenBucket(2, 50), mode=args.mode)
        entity = "lead" if args.mode == "classic" else "deal"
        for lead in sample:
            if lead.phone:
                client.call("crm.duplicate.findbycomm", {"type": "PHONE", "values": [lead.phone]})
            fields = {"TITLE": lead.title, "ORIGINATOR_ID": "leadflow", "ORIGIN_ID": lead.origin_id}
            if entity == "deal" and lead.phone:
                contact = client.call("crm.contact.add", {"fields": {"PHONE": [{"VALUE": lead.phone}]}})
                fields["CONTACT_ID"] = contact
            crm_id = client.call(f"crm.{entity}.add", {"fields": fields})
            if lead.callback:
                client.call(
                    "crm.activity.todo.add",
                    {
                        "ownerTypeId": 1 if entity == "lead" else 2,
                        "ownerId": crm_id,
                        "deadline": lead.callback.due.isoformat(),
                    },
                )
        plain_single = len(portal.server.requests) / len(sample)

    # ---------------------------------------------------------------- batched, under the limit
    leads = make_leads(args.leads, "lead")
    groups = [leads[i : i + args.group] for i in range(0, len(leads), args.group)]
    queue: deque[tuple[float, list[CrmLead], int]] = deque((0.0, g, 0) for g in groups)
    outcomes: dict[str, object] = {}
    faults: Counter[str] = Counter()
    retries = 0
    failed_for_good: list[str] = []
    first_clean: list[int] = []  # HTTP requests of each first delivery that met no injected fault
    per_push: list[int] = []  # HTTP requests of every push, redeliveries and faults included

    with Bitrix24Portal(mode=portal_mode) as portal:
        limiter = TokenBucket(2, 50)
        client = Bitrix24Client(portal.webhook_url, requests.Session(), limiter, mode="auto", timeout_s=1.0)
        started = time.monotonic()
        done_at: list[tuple[float, int]] = []
        while queue:
            ready_at, group, attempt = queue.popleft()
            now = time.monotonic()
            if ready_at > now:
                if all(r > now for r, _, _ in queue):
                    time.sleep(min(r for r, _, _ in [*queue, (ready_at, group, attempt)]) - now)
                queue.append((ready_at, group, attempt))
                continue
            roll = rng.random()
            sent_before = len(portal.server.requests)
            if roll < args.fault_rate / 3:
                portal.fail_next(500, "INTERNAL_SERVER_ERROR", method="batch")
                faults["500 before applying"] += 1
            elif roll < 2 * args.fault_rate / 3:
                portal.apply_then_lose_next(method="batch", skip=1)  # the write applied, 504 back
                faults["504 after applying"] += 1
            elif roll < args.fault_rate:
                portal.delay_next(1.5, method="batch", skip=1)  # applied, answered after the client gave up
                faults["timeout after applying"] += 1
            try:
                try:
                    results = client.push(group, after_unknown_outcome=attempt > 0)
                finally:
                    per_push.append(len(portal.server.requests) - sent_before)
                    if attempt == 0 and roll >= args.fault_rate:
                        first_clean.append(per_push[-1])
            except Bitrix24Error as exc:
                portal._faults.clear()  # an unused fault must not hit the next group
                if not exc.retryable:
                    failed_for_good.extend(lead.origin_id for lead in group)
                    continue
                retries += 1
                queue.append((time.monotonic() + min(8.0, 1.0 * 2**attempt), group, attempt + 1))
                continue
            portal._faults.clear()
            again = []
            for lead, outcome in zip(group, results, strict=True):
                if outcome.error and outcome.retryable and outcome.crm_id is None:
                    again.append(lead)
                elif outcome.error and outcome.crm_id is None:
                    failed_for_good.append(lead.origin_id)
                else:
                    outcomes[lead.origin_id] = outcome
            if again:
                retries += 1
                queue.append((time.monotonic() + 1.0, again, attempt + 1))
            done_at.append((time.monotonic() - started, len(outcomes)))
        elapsed = time.monotonic() - started

        # ------------------------------------------------------------ verify on the portal
        records: Counter[str] = Counter()
        for table in (portal.portal.leads, portal.portal.deals):
            for record in table.values():
                records[str(record.get("ORIGIN_ID"))] += 1
        commented: Counter[str] = Counter()
        for comment in portal.portal.comments.values():
            for word in str(comment.get("COMMENT", "")).split():
                if word.startswith("lead-"):
                    commented[word.rstrip("):")] += 1
        lost = [n.origin_id for n in leads if not records[n.origin_id] and not commented[n.origin_id]]
        doubled_records = [origin for origin, count in records.items() if count > 1]
        doubled_comments = [origin for origin, count in commented.items() if count > 1]
        missing_outcomes = [lead.origin_id for lead in leads if lead.origin_id not in outcomes]
        http_requests = len(portal.server.requests)
        rejected = Counter(code for _, code in portal.rejected)

    # steady state: leads/s once the 50-request burst is spent (the second half of the run)
    half = next((i for i, (t, _) in enumerate(done_at) if t >= elapsed / 2), 0)
    t_half, n_half = done_at[half] if done_at else (0.0, 0)
    steady = (len(outcomes) - n_half) / (elapsed - t_half) if elapsed > t_half else 0.0

    print(
        f"bitrix_push: {args.leads} leads, route batches of {args.group}, mode={args.mode}, "
        f"portal 2 req/s, burst 50, faults in {args.fault_rate:.0%} of pushes"
    )
    print(f"  command: .venv/bin/python bench/route/bitrix_push.py --leads {args.leads} --group {args.group}"
          f" --mode {args.mode} --seed {args.seed} --fault-rate {args.fault_rate:g}")  # fmt: skip
    print(f"  requests per lead, one lead per push():         {push_single:.2f}")
    print(f"  requests per lead, one REST call per step:      {plain_single:.2f}")
    print(f"  requests per lead, batched (incl. retries):     {http_requests / args.leads:.3f}")
    print(f"  HTTP requests total:                            {http_requests}")
    spread = dict(sorted(Counter(first_clean).items()))
    print(f"  requests per route batch, first delivery:       max {max(first_clean, default=0)} {spread}")
    print(f"  requests per route batch, all pushes:           max {max(per_push, default=0)}"
          f" {dict(sorted(Counter(per_push).items()))}")  # fmt: skip
    print(f"  injected faults:                                {dict(faults) or 'none'}")
    print(f"  portal rejections:                              {dict(rejected) or 'none'}")
    print(f"  queue redeliveries:                             {retries}")
    print(f"  elapsed:                                        {elapsed:.1f} s")
    print(f"  sustained leads/s (whole run):                  {args.leads / elapsed:.2f}")
    print(f"  sustained leads/s (second half, burst spent):   {steady:.2f}")
    print(f"  lost leads:                                     {len(lost)}")
    print(f"  leads with two CRM records:                     {len(doubled_records)}")
    print(f"  leads whose duplicate comment was written twice: {len(doubled_comments)}")
    unfinished = f"{len(missing_outcomes)} / {len(failed_for_good)}"
    print(f"  leads without an outcome / failed for good:     {unfinished}")
    ok = not lost and not doubled_records and not missing_outcomes and not failed_for_good
    print("  verdict:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
