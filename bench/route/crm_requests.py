"""Requests per lead and leads per second into amoCRM and a Google sheet at their documented limits.

The real adapters (AmoCrm, SheetsCrm) push leads in route batches of template.yaml's RouteFunction
BatchSize into the stand-ins of tests/fakes (amoCRM counts its 7 requests a second and answers 429
past them; Google counts 60 writes and 60 reads a minute per account), each behind the request
budget production uses for it (business.CRM_REQUEST_BUDGETS). A quarter of the leads come back
as repeat clients, a fifth carry an off-hours call-back.

    .venv/bin/python bench/route/crm_requests.py [--leads 100] [--seed 7]
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: tests.fakes
    import requests

    from leadflow.adapters.crm import CrmUnavailable
    from leadflow.adapters.crm.amocrm import AmoCrmClient
    from leadflow.adapters.crm.amocrm_crm import AmoCrm
    from leadflow.adapters.crm.google_sheets import ServiceAccountToken, SheetsClient
    from leadflow.adapters.crm.sheets_crm import SheetsCrm
    from leadflow.adapters.rate_limit import TokenBucket
    from leadflow.business import CRM_REQUEST_BUDGETS, load_business_config
    from leadflow.domain.models import Contact, Lead
    from leadflow_local.template import load_template
    from tests.fakes.amocrm_server import AmoCrmAccount
    from tests.fakes.google_sheets_server import GoogleSheets, service_account_json

    [route_source] = load_template().functions()["route"].sqs_sources
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100)
    parser.add_argument("--group", type=int, default=int(route_source["batch_size"]))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("leadflow").setLevel(logging.ERROR)
    rng = random.Random(args.seed)
    root = Path(__file__).resolve().parents[2]
    business = load_business_config(root / "tests" / "support" / "salon.yaml")
    now = datetime(2026, 3, 14, 5, 0, tzinfo=UTC)

    def leads() -> list[Lead]:
        out, phones = [], []
        for n in range(args.leads):
            phone = (
                rng.choice(phones) if phones and rng.random() < 0.25 else f"+7913{rng.randrange(10**7):07d}"
            )
            phones.append(phone)
            out.append(Lead(
                lead_id=f"L{n:012d}", channel="telegram", chat_id=str(n), contact_id=f"C{n}",
                contact=Contact(name="Анна", phone=phone), intent="booking", temperature="warm",
                service="manicure", owner="anna", received_at=now, last_message_at=now,
                callback_at=now + timedelta(hours=12) if rng.random() < 0.2 else None,
            ))  # fmt: skip
        return out

    def run(name: str, crm, requests_sent) -> None:  # type: ignore[no-untyped-def]
        batch = leads()
        started, retries = time.monotonic(), 0
        for start in range(0, len(batch), args.group):
            group = [(lead, None) for lead in batch[start : start + args.group]]
            redelivered = False
            while True:
                try:
                    crm.push(group, business, redelivered)
                    break
                except CrmUnavailable:
                    retries += 1
                    redelivered = True
                    time.sleep(1.0)  # SQS would wait minutes; the budget refills meanwhile
        took = time.monotonic() - started
        rate, burst = CRM_REQUEST_BUDGETS[name]
        print(
            f"{name:8} leads={len(batch)} requests={requests_sent()} per lead={requests_sent() / len(batch):.2f} "
            f"leads/s={len(batch) / took:.1f} (sustained at the limit: {rate * len(batch) / requests_sent():.1f}; "
            f"budget {rate}/s, burst {burst}) retries={retries}"
        )

    with AmoCrmAccount(users=(111,)) as amo:
        rate, burst = CRM_REQUEST_BUDGETS["amocrm"]
        client = AmoCrmClient(
            amo.base_url, amo.token, requests.Session(), TokenBucket(rate, burst, max_wait_s=5)
        )
        run("amocrm", AmoCrm(client, business), lambda: client.requests_sent)
        assert not amo.violations, amo.violations
        assert all(len(amo.leads_named_with(f"L{n:012d}")) == 1 for n in range(args.leads))

    with GoogleSheets() as google:
        google.create("1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")
        rate, burst = CRM_REQUEST_BUDGETS["sheets"]
        session = requests.Session()
        token = ServiceAccountToken(service_account_json(), google.token_url, session)
        sheets = SheetsClient(google.url, token, session, TokenBucket(rate, burst, max_wait_s=5))
        from leadflow.business import Sheet

        crm = SheetsCrm(sheets, Sheet(spreadsheet_id="1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"), business)
        run("sheets", crm, lambda: sheets.requests_sent)
        assert len(google.rows("1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")) == args.leads + 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
