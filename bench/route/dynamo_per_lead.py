"""DynamoDB requests per routed lead: the real Router on moto, counted by operation.

Leads of the bundled example business (mixed services, some repeat clients, some at night) are
routed in SQS-sized batches; every DynamoDB call the route step makes is counted with a botocore
``before-call`` hook on the store's client. Baseline in the same run: the assignment alone
(``choose_owner``), and a redelivery of every batch (steps found done).

    .venv/bin/python bench/route/dynamo_per_lead.py [--leads 100] [--batch 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

COMMAND = "  command: .venv/bin/python bench/route/dynamo_per_lead.py"
SERVICES = ["manicure", "haircut_women", "lashes", "dental_checkup", "tire_change", "massage"]


class CallCounter:
    """Counts DynamoDB operations (BatchGetItem, UpdateItem, …) made through one client."""

    def __init__(self, client: Any):
        self.calls: Counter[str] = Counter()
        client.meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


def _environment() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="eu-central-1",
        POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="ERROR", LEADS_TABLE="LeadsTable",
        CONTACTS_TABLE="ContactsTable", CONVERSATION_TABLE="ConversationTable", STAFF_TABLE="StaffTable",
        TIMERS_TABLE="TimersTable", INBOX_TABLE="InboxTable", CONFIG_TABLE="ConfigTable",
    )  # fmt: skip
    for name in (
        "TELEGRAM_BOT_TOKEN",
        "BITRIX24_WEBHOOK_URL",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
    ):
        os.environ.pop(name, None)  # outbox and built-in CRM: only DynamoDB is measured


def _make_leads(store: Any, count: int, start: datetime) -> list[str]:
    from leadflow.domain.models import Contact, Lead

    ids = []
    for i in range(count):
        received = start + timedelta(minutes=7 * i)  # spans days: open hours and nights
        contact_id = f"C{i % (count * 3 // 4) or i}"  # a quarter of the leads are repeat clients
        store.contacts.update(contact_id, leads=1 + (i >= count * 3 // 4))
        lead = Lead(
            lead_id=f"L{i:05d}", status="qualifying", channel="telegram", chat_id=str(1000 + i),
            contact_id=contact_id, contact=Contact(name="Клиент"), intent="booking",
            temperature=("hot", "warm", "cold")[i % 3], service=SERVICES[i % len(SERVICES)],
            received_at=received, last_message_at=received,
        )  # fmt: skip
        store.leads.create(lead)
        ids.append(lead.lead_id)
    return ids


def _table(title: str, calls: Counter[str], leads: int) -> list[str]:
    rows = [f"{title}: {sum(calls.values()) / leads:.2f} DynamoDB requests per lead"]
    rows += [f"    {op:<16} {n / leads:6.2f}" for op, n in sorted(calls.items(), key=lambda kv: -kv[1])]
    return rows


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10, help="LeadReady messages per SQS batch")
    args = parser.parse_args()
    _environment()
    logging.disable(logging.WARNING)

    import boto3
    from moto import mock_aws

    from leadflow import clock, wiring
    from leadflow.domain.assignment import choose_owner
    from leadflow.domain.models import LeadReady
    from leadflow.domain.rules import LeadFacts
    from leadflow.steps.route import Router
    from leadflow_local.stack import EXAMPLE_CONFIG, create_tables
    from leadflow_local.template import load_template

    # Powertools prints its metrics (EMF) to stdout; only the table belongs there.
    with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
        create_tables(boto3.client("dynamodb"), load_template())
        wiring.reset()
        store = wiring.store()
        store.config.put(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
        business = wiring.business()
        start = datetime(2026, 3, 16, 1, 0, tzinfo=UTC)  # Monday 08:00 in Krasnoyarsk
        ids = _make_leads(store, args.leads, start)
        router = Router(store, wiring.outbound(), wiring.crm(), business)
        counter = CallCounter(store.leads.table.meta.client)

        batches = [ids[i : i + args.batch] for i in range(0, len(ids), args.batch)]
        for n, batch in enumerate(batches):
            clock.freeze(start + timedelta(minutes=7 * args.batch * n))
            failed = router.route([LeadReady(lead_id=i) for i in batch])
            if failed:
                raise SystemExit(f"route failed: {failed}")
        first = counter.take()
        for batch in batches:
            router.route([LeadReady(lead_id=i) for i in batch], redelivered=True)
        again = counter.take()

        # Baseline: the owner decision alone, for the same leads, on a fresh staff state.
        for item in store.staff.table.scan()["Items"]:
            store.staff.table.delete_item(Key={"pk": item["pk"]})
        assign_only: Counter[str] = Counter()
        for lead_id in ids:
            lead = store.leads.get(lead_id)
            assert lead is not None
            counter.take()  # the read above belongs to the bench, not to the decision
            choose_owner(lead, LeadFacts(), business, store.staff, lead.received_at, None)
            assign_only += counter.take()
        owners = Counter(store.leads.get(i).owner for i in ids)  # type: ignore[union-attr]
        wiring.reset()

    print(f"routed {args.leads} leads of the example business in batches of {args.batch} on moto")
    print(f"  owners: {dict(sorted(owners.items()))}")
    for line in _table("baseline, assignment alone (choose_owner)", assign_only, args.leads):
        print(line)
    for line in _table("redelivery of every batch (all steps found done)", again, args.leads):
        print(line)
    for line in _table("route step, first delivery (Router.route)", first, args.leads):
        print(line)
    print(COMMAND + f" --leads {args.leads} --batch {args.batch}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
