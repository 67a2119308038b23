"""The `leadflow` command: run the local stack and talk to it (or to a deployed stack, `--stack NAME`),
check configs and connections, qualify texts."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadflow_local.client import CannotReach, NotRunning, Target, reach, read_state
from leadflow_local.report import print_kpis

if TYPE_CHECKING:
    from leadflow.business import BusinessConfig
    from leadflow.domain.models import Lead

# A deployed stack's leads are read day by day (the by_day index): without --since, the last 30 days.
DEFAULT_WINDOW_DAYS = 30


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


# --------------------------------------------------------------------------- up


def cmd_up(args: argparse.Namespace) -> int:
    from leadflow_local import snapshot
    from leadflow_local.stack import LocalStack, PortInUse

    if args.speed <= 0:
        print("leadflow up: --speed must be positive", file=sys.stderr)
        return 2
    stack = LocalStack(
        port=args.port,
        config_path=Path(args.config) if args.config else None,
        speed=args.speed,
        data_dir=Path(args.data) if args.data else None,
        flavor=args.flavor,
    )
    try:
        stack.start()
    except PortInUse as exc:
        print(f"leadflow up: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        stack.stop()
        print(f"leadflow up: could not start: {exc}", file=sys.stderr)
        return 1
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    # From here on a Ctrl-C (even one that lands while the lines below are printed) stops the stack.
    try:
        print(f"leadflow up: {stack.url}", flush=True)
        for channel, url in stack.webhook_urls().items():
            print(f"  {channel:<10} {url}")
        link = stack.panel_login_link()
        if link:
            print(f"leadflow panel: {link}", flush=True)
        if stack.dev_secrets:
            print("development secrets (set these variables yourself to choose them):")
            for name, value in stack.dev_secrets.items():
                print(f"  {name}={value}")
        if stack.data_dir:
            brought = stack.restored
            kept = (
                f"{brought['items']} items, {brought.get('files', 0)} clients' files"
                f" and {brought['messages']} queued messages"
                if brought
                else "nothing yet"
            )
            print(f"data: {stack.data_dir} ({kept} restored; written every "
                  f"{snapshot.SNAPSHOT_EVERY_S} s and at stop)")  # fmt: skip
        else:
            print("data: in memory only — Ctrl-C forgets every lead (keep them with --data DIR)")
        flavor = " · Yandex Cloud flavour" if args.flavor == "yandex" else ""
        print(
            f"AWS emulator: {stack.emulator.endpoint} · clock speed ×{args.speed:g}{flavor} · Ctrl-C stops",
            flush=True,
        )
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not cut the stop short: the snapshot of --data is written in it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        print(
            f"leadflow up: stopped{f'; data kept in {stack.data_dir}' if stack.data_dir else ''}", flush=True
        )
    return 0


# --------------------------------------------------------------------------- reading the stack


def _connected(args: argparse.Namespace, function: str = "route") -> Target:
    """The stack the command acts on: `--stack NAME` (deployed), else the running local one."""
    return reach(getattr(args, "stack", None), getattr(args, "port", None), function)


def _iso_date(text: str) -> date:
    """A day as people write it: 2026-11-30, 30.11.2026 or 30.11 (this year)."""
    text = text.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    parts = text.split(".")
    try:
        if len(parts) in (2, 3):
            day, month = int(parts[0]), int(parts[1])
            year = int(parts[2]) if len(parts) == 3 else date.today().year
            return date(year + 2000 if year < 100 else year, month, day)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD or DD.MM.YYYY, got {text!r}")


def _selected_leads(args: argparse.Namespace, target: Target) -> list[Lead]:
    """Leads received between --since and --until (days in the business's time zone), of --branch
    if given. A local stack's are all read; a deployed stack's are queried day by day (the index
    is by UTC day: one more day each side), the last 30 days unless --since says."""
    from leadflow import clock, wiring
    from leadflow_local.inspect import all_leads, leads_received

    tz = wiring.business().tz
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    branch = getattr(args, "branch", None)
    if target.deployed:
        last = until or clock.now().astimezone(tz).date()
        first = since or last - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
        if since is None:
            print(f"leads received {first}…{last} (--since for earlier ones)", file=sys.stderr)
        leads = leads_received(first - timedelta(days=1), last + timedelta(days=1))
    else:
        leads = all_leads()
    return [
        lead for lead in leads
        if (since is None or lead.received_at.astimezone(tz).date() >= since)
        and (until is None or lead.received_at.astimezone(tz).date() <= until)
        and (branch is None or lead.branch == branch)
    ]  # fmt: skip


def cmd_leads(args: argparse.Namespace) -> int:
    target = _connected(args)
    selected = _selected_leads(args, target)
    if args.json:
        _print_json([lead.public_view() for lead in selected])
        return 0
    if not selected:
        print("no leads yet")
        return 0
    from leadflow import wiring
    from leadflow_local.inspect import next_timer
    from leadflow_local.report import leads_table

    print(leads_table(selected, wiring.business(), next_timer))
    return 0


def _card_text(lead_id: str) -> str:
    from leadflow import clock, wiring
    from leadflow.domain.cards import card_text

    store, business = wiring.store(), wiring.business()
    lead = store.leads.get(lead_id)
    assert lead is not None
    today = clock.now().astimezone(business.tz).date()
    history = store.conversation.history(lead_id)
    return card_text(business, lead, store.contacts.get(lead.contact_id), history, today)


def cmd_lead(args: argparse.Namespace) -> int:
    from leadflow_local.inspect import lead_with_messages

    _connected(args)
    lead = lead_with_messages(args.lead_id)
    if lead is None:
        print(f"leadflow lead: no lead {args.lead_id}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(lead)
        return 0
    messages = lead.pop("messages")
    for key, value in lead.items():
        if value not in (None, [], {}):
            print(
                f"{key:<16} {json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value}"
            )
    print("\ncard (as its owner sees it in Telegram):")
    for line in _card_text(args.lead_id).splitlines():
        print(f"  │ {line}")
    print("\nconversation and timeline:")
    for m in messages:
        print(f"[{m['at'] or '-'}] {m['direction']:<5} {m['kind'] or m['channel'] or ''}".rstrip())
        for line in (m["text"] or "").splitlines():
            print(f"    {line}")
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    from leadflow_local.inspect import outbox

    _connected(args)
    messages = outbox()
    if args.json:
        _print_json(messages)
        return 0
    if not messages:
        print("outbox is empty")
    for m in messages:
        print(
            f"[{m['sent_at'] or m['status']}] {m['kind']:<12} {m['channel']}→{m['to']}  lead={m['lead_id'] or '-'}"
        )
        for line in m["text"].splitlines():
            print(f"    {line}")
    return 0


def cmd_kpi(args: argparse.Namespace) -> int:
    from leadflow import wiring
    from leadflow.domain.kpi import compute_kpis

    target = _connected(args)
    kpis = compute_kpis(_selected_leads(args, target), tz=wiring.business().tz)
    if args.json:
        _print_json(kpis)
        return 0
    print_kpis(kpis, wiring.business())
    return 0


def cmd_stats_rebuild(args: argparse.Namespace) -> int:
    """The panel's lead facts of the last --days, from the leads (a stack upgraded with leads
    stored, or days a failed stream batch left out); the stream keeps them from then on."""
    from leadflow import clock, wiring
    from leadflow.steps.tally import Tally

    _connected(args, "panel")
    last = clock.now().date() + timedelta(days=1)  # UTC days; tomorrow's in the east of Russia
    first = last - timedelta(days=args.days)
    count = Tally(wiring.store().stats).rebuild(wiring.store().leads, first, last, overwrite=args.overwrite)
    print(
        f"lead facts {'rewritten' if args.overwrite else 'filled in'} for {count} leads received {first}…{last}"
    )
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    from leadflow_local.inspect import book

    _connected(args)
    try:
        at = datetime.fromisoformat(args.at)
    except ValueError:
        print(
            f"leadflow book: --at must be ISO 8601 (e.g. 2026-03-20T15:00+07:00), got {args.at!r}",
            file=sys.stderr,
        )
        return 2
    try:
        lead = book(args.lead, at)
    except (LookupError, ValueError) as exc:
        print(f"leadflow book: {exc}", file=sys.stderr)
        return 1
    print(
        f"{lead.lead_id} booked for {lead.appointment_at.isoformat() if lead.appointment_at else '-'}; reminders scheduled"
    )
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    from leadflow_local.inspect import dlq_messages, redrive

    if args.yandex:  # a Yandex Cloud deployment: its queues from `terraform output -json`
        from leadflow_local.yandex import BadOutputs, queue_urls

        try:
            queue_url = queue_urls(Path(args.yandex))
        except BadOutputs as exc:
            print(exc, file=sys.stderr)
            return 2
    else:
        queue_url = _connected(args).queue_url
    if args.action == "redrive":
        moved = redrive(queue_url=queue_url)
        print(f"redrove {moved} message(s)")
        return 0
    messages = dlq_messages(queue_url=queue_url)
    if args.json:
        _print_json(messages)
        return 0
    if not messages:
        print("dead-letter queues are empty")
    for m in messages:
        print(f"{m['queue']}: {m['message_id']}  reason: {m['reason'] or '(retries exhausted)'}")
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    from leadflow_local.inspect import invoke_function

    try:
        event = json.loads(Path(args.event).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"leadflow invoke: cannot read the event {args.event}: {exc}", file=sys.stderr)
        return 2
    # A fresh emulator unless --port names a running stack: a sample event never lands in a
    # stack somebody is using (it would send real cards and count in its KPIs).
    state = read_state(args.port) if args.port is not None else None
    # As `sam local invoke`: the function's logs on stderr, its result alone on stdout.
    import logging

    from leadflow.observability import logger

    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    with contextlib.redirect_stdout(sys.stderr):
        result = invoke_function(args.function, event, state)
    _print_json(result)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from leadflow_local.demo import run_demo

    return run_demo(speed=args.speed, keep=args.keep, crm=args.crm)


def _business_file(path: str) -> BusinessConfig | None:
    """A business config file, or None after saying on stderr what is wrong with it."""
    from leadflow.business import ConfigError, load_business_config

    try:
        return load_business_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
    except OSError as exc:
        print(f"{path}: {exc.strerror}", file=sys.stderr)
    return None


def cmd_whatif(args: argparse.Namespace) -> int:
    """The last --days of stored leads replayed under the rules in force and under FILE."""
    from leadflow import clock, wiring
    from leadflow.domain.whatif import replay

    draft = _business_file(args.file)
    if draft is None:
        return 1
    target = _connected(args)
    current = wiring.business()
    args.until = clock.now().astimezone(current.tz).date()
    args.since = args.until - timedelta(days=args.days - 1)
    report = replay(_selected_leads(args, target), current, draft).as_dict()
    if args.json:
        _print_json(report)
        return 0
    print(
        f"{report['leads']} leads of the last {args.days} days; a different owner for {report['changed_owner']}"
    )
    for staff_id, load in report["load"].items():
        mark = "" if load["now"] == load["draft"] else "  ←"
        print(f"  {staff_id:<12} {load['now']:>4} → {load['draft']:<4}{mark}")
    print(f"to the default owner (nobody eligible): {report['to_default_owner']['now']} → "
          f"{report['to_default_owner']['draft']}")  # fmt: skip
    print(
        f"off hours, called back at opening: {report['night_callback']['now']} → {report['night_callback']['draft']}"
    )
    breach = report["sla_breach"]
    # Definition: leadflow.domain.whatif (the owner's first shift moment is past the SLA, or over capacity).
    print(f"would breach the SLA: {breach['now']} → {breach['draft']}"
          + (f" ({', '.join(breach['draft_leads'][:10])})" if breach["draft_leads"] else ""))  # fmt: skip
    return 0


def cmd_panel_link(args: argparse.Namespace) -> int:
    """A one-time login link to the panel (10 minutes) for a staff member."""
    from leadflow import wiring
    from leadflow.settings import settings
    from leadflow.steps.panel.auth import issue_login_link

    target = _connected(args)
    member = wiring.business().staff_member(args.staff_id)
    if member is None or not member.active:
        print(
            f"leadflow panel-link: no active staff member {args.staff_id!r} in the business config",
            file=sys.stderr,
        )
        return 1
    base = settings().public_base_url or (target.webhook_base or "").removesuffix("/webhooks")
    if not base:
        print("leadflow panel-link: set PUBLIC_BASE_URL (the stack's public address)", file=sys.stderr)
        return 1
    print(issue_login_link(wiring.store().panel, member.id, base))
    return 0


def cmd_qualify(args: argparse.Namespace) -> int:
    from leadflow_local.qualify_cmd import run

    return run(args.catalog, args.engine, sys.stdin, sys.stdout, fallback=args.fallback)


def cmd_config(args: argparse.Namespace) -> int:

    business = _business_file(args.file)
    if business is None:
        return 1
    if args.action == "check":
        from leadflow.business import dotted, locate
        from leadflow.domain.config_review import config_warnings

        text = Path(args.file).read_text(encoding="utf-8")
        for loc, warning in config_warnings(business):
            line = locate(text, loc)
            where = dotted(loc) + (f" (line {line})" if line else "")
            print(f"{args.file}: {where}: warning: {warning}")
        print(f"{args.file}: ok ({len(business.services)} services, {len(business.staff)} staff, "
              f"{len(business.routing)} routing rules)")  # fmt: skip
        return 0
    from leadflow import wiring

    if args.table and not args.stack:  # a table named by hand (AWS credentials from the environment)
        import os

        os.environ["CONFIG_TABLE"] = args.table
        wiring.reset()
    else:
        _connected(args)
    wiring.store().config.put(Path(args.file).read_text(encoding="utf-8"))
    print(f"{args.file}: stored; functions pick it up within a minute")
    return 0


def cmd_staff(args: argparse.Namespace) -> int:
    from leadflow_local.inspect import invite

    _connected(args)
    try:
        bot = args.bot or os.environ.get("TELEGRAM_BOT_USERNAME", "").lstrip("@") or None
        code, link = invite(args.staff_id, bot)
    except LookupError as exc:
        print(f"leadflow staff invite: {exc}", file=sys.stderr)
        return 1
    print(f"one-time invite for {args.staff_id} (valid 7 days): {link or '/start inv-' + code}")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    """152-FZ: erase a person by their phone, and say what was erased and what could not be."""
    from leadflow import wiring
    from leadflow.steps.privacy import Privacy

    _connected(args)
    try:
        report = Privacy(wiring.store(), wiring.crm(), wiring.business(), wiring.media_bucket()).forget(
            args.phone
        )
    except ValueError as exc:
        print(f"leadflow forget: {exc}", file=sys.stderr)
        return 2
    print(f"{args.phone}: " + "; ".join(report.lines()))
    return 1 if report.crm_problems else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Every outside connection of the stack, one line each; exit 1 when any has a problem."""
    from leadflow_local.doctor import run_checks, setup_for, summary

    target: Target | None
    try:
        target = _connected(args)
    except NotRunning as exc:
        print(f"leadflow doctor: {exc} — checking this shell's settings only", file=sys.stderr)
        target = None
    checks = run_checks(setup_for(target))
    if args.json:
        _print_json([{"check": c.name, "status": c.status, "text": c.text} for c in checks])
    else:
        if target is not None:
            print(f"leadflow doctor: {target.label}")
        for c in checks:
            print(f"{c.status:<8} {c.name:<18} {c.text}")
        print(summary(checks))
    return 1 if any(c.status == "problem" for c in checks) else 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole system locally (AWS emulator, gateway, pollers, scheduler)")
    up.add_argument(
        "--port", type=int, default=3000, help="gateway port (default 3000, as sam local start-api)"
    )
    up.add_argument("--config", help="business config YAML (default: the bundled example business)")
    up.add_argument("--speed", type=float, default=1.0, help="run the clock K times faster")
    up.add_argument(
        "--data",
        metavar="DIR",
        help="keep leads, conversations and queues in DIR across restarts (default: forgotten at stop)",
    )
    up.add_argument(
        "--flavor", choices=["aws", "yandex"], default="aws",
        help="the cloud whose events and semantics the stack plays (default aws; yandex: deploy/yandex)",
    )  # fmt: skip
    up.set_defaults(func=cmd_up)

    def with_port(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--port", type=int, help="the running stack's gateway port (default: the state file)")
        return p

    def with_stack(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        with_port(p)
        p.add_argument("--stack", metavar="NAME", help="a deployed CloudFormation stack instead of the local one "
                                                       "(region and credentials: AWS_PROFILE, AWS_REGION, …)")  # fmt: skip
        return p

    def with_days(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--since",
            type=_iso_date,
            help="first day, YYYY-MM-DD or DD.MM.YYYY (deployed stack: 30 days back)",
        )
        p.add_argument("--until", type=_iso_date, help="last day, YYYY-MM-DD or DD.MM.YYYY (default: today)")
        return p

    leads = with_days(with_stack(sub.add_parser("leads", help="list leads")))
    leads.add_argument("--json", action="store_true", help="one JSON array")
    leads.add_argument("--branch", help="only this branch's leads")
    leads.set_defaults(func=cmd_leads)

    lead = with_stack(sub.add_parser("lead", help="one lead and its conversation"))
    lead.add_argument("lead_id")
    lead.add_argument("--json", action="store_true", help="one JSON object")
    lead.set_defaults(func=cmd_lead)

    outbox = with_port(sub.add_parser("outbox", help="messages sent or recorded"))
    outbox.add_argument("--json", action="store_true", help="one JSON array")
    outbox.set_defaults(func=cmd_outbox)

    kpi = with_days(with_stack(
        sub.add_parser("kpi", help="first response, acceptance, conversion, no-shows, SLA breaches")
    ))  # fmt: skip
    kpi.add_argument("--json", action="store_true")
    kpi.add_argument("--branch", help="only this branch's leads (its id in the business config)")
    kpi.set_defaults(func=cmd_kpi)

    rebuild = with_stack(sub.add_parser(
        "stats-rebuild", help="rebuild the panel's lead facts of the last days from the leads (after an upgrade)"
    ))  # fmt: skip
    rebuild.add_argument("--days", type=int, default=90, help="how many days back (default 90)")
    rebuild.add_argument("--overwrite", action="store_true",
                         help="rewrite facts that exist too (default: fill in the missing ones only)")  # fmt: skip
    rebuild.set_defaults(func=cmd_stats_rebuild)

    book = with_stack(sub.add_parser("book", help="record an appointment for a lead (reminders follow)"))
    book.add_argument("lead")
    book.add_argument("--at", required=True, help="ISO 8601 time, e.g. 2026-03-20T15:00+07:00")
    book.set_defaults(func=cmd_book)

    dlq = with_stack(
        sub.add_parser("dlq", help="show dead-lettered messages with their reason, or redrive them")
    )
    dlq.add_argument("action", nargs="?", choices=["redrive"])
    dlq.add_argument("--json", action="store_true")
    dlq.add_argument(
        "--yandex", metavar="OUTPUTS.json",
        help="a Yandex Cloud deployment: `terraform -chdir=deploy/yandex output -json` saved to a file",
    )  # fmt: skip
    dlq.set_defaults(func=cmd_dlq)

    invoke = sub.add_parser("invoke", help="run one handler in-process (sam local invoke without Docker)")
    invoke.add_argument(
        "--port", type=int, help="run it against the stack running on this port (default: a fresh emulator)"
    )
    invoke.add_argument("function", choices=["ingest", "score", "route", "escalate", "remind", "panel"])
    invoke.add_argument("-e", "--event", required=True, help="event JSON file (see events/)")
    invoke.set_defaults(func=cmd_invoke)

    demo = sub.add_parser(
        "demo", help="start the stack, replay a realistic stream of leads, print what happened"
    )
    demo.add_argument("--speed", type=float, default=600.0, help="clock speed while the SLA ladder plays out")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the stack running with the demo's data (Ctrl-C stops), and print the panel's login link",
    )
    demo.add_argument(
        "--crm", choices=["builtin", "sheets"], default="builtin",
        help="sheets: leads go to a Google sheet on a local stand-in of Google's API, printed at the end",
    )  # fmt: skip
    demo.set_defaults(func=cmd_demo)

    qualify = sub.add_parser(
        "qualify", help="JSON lines in (id, text, received_at, channel) → qualification out"
    )
    qualify.add_argument("--catalog", required=True, help="YAML with timezone and services")
    qualify.add_argument("--engine", choices=["offline", "llm"], default="offline")
    qualify.add_argument(
        "--fallback", action="store_true", help="with --engine llm: answer offline when the LLM cannot"
    )
    qualify.set_defaults(func=cmd_qualify)

    config = sub.add_parser("config", help="validate or store the business config")
    config.add_argument("action", choices=["check", "push"])
    config.add_argument("file")
    with_stack(config)
    config.add_argument("--table", help="push to this DynamoDB table (prefer --stack NAME)")
    config.set_defaults(func=cmd_config)

    doctor = with_stack(
        sub.add_parser(
            "doctor", help="check every outside connection (Telegram, Meta, VK, Bitrix24, SMS, LLM, staff)"
        )
    )
    doctor.add_argument("--json", action="store_true", help="one JSON array of {check, status, text}")
    doctor.set_defaults(func=cmd_doctor)

    forget = with_stack(
        sub.add_parser("forget", help="erase a person by phone (152-FZ), and say what was erased")
    )
    forget.add_argument("phone")
    forget.set_defaults(func=cmd_forget)

    whatif = with_stack(sub.add_parser("whatif", help="replay the last days' leads under a draft config"))
    whatif.add_argument("file", help="the draft business config YAML")
    whatif.add_argument("--days", type=int, default=30, help="how many days back (default 30)")
    whatif.add_argument("--json", action="store_true", help="one JSON object")
    whatif.set_defaults(func=cmd_whatif)

    panel_link = with_stack(
        sub.add_parser("panel-link", help="a one-time login link to the panel (valid 10 minutes)")
    )
    panel_link.add_argument("staff_id")
    panel_link.set_defaults(func=cmd_panel_link)

    staff = sub.add_parser("staff", help="staff onboarding")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    inv = with_stack(staff_sub.add_parser("invite", help="a one-time /start link for a staff member"))
    inv.add_argument("staff_id")
    inv.add_argument("--bot", help="bot username, to print a t.me link (default: TELEGRAM_BOT_USERNAME)")
    inv.set_defaults(func=cmd_staff)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CannotReach as exc:
        print(f"leadflow {args.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `leadflow leads | head -3`: the reader has all it wanted. Python would print a traceback
        # flushing stdout at exit; point it at /dev/null instead.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
