"""The `leadflow` command: run the local stack and talk to it, check configs, qualify texts."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import date, datetime
from pathlib import Path
from typing import Any

from leadflow_local.client import NotRunning, connect, read_state
from leadflow_local.report import print_kpis


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


# --------------------------------------------------------------------------- up


def cmd_up(args: argparse.Namespace) -> int:
    from leadflow_local.stack import LocalStack, PortInUse

    if args.speed <= 0:
        print("leadflow up: --speed must be positive", file=sys.stderr)
        return 2
    stack = LocalStack(
        port=args.port, config_path=Path(args.config) if args.config else None, speed=args.speed
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
    print(f"leadflow up: {stack.url}", flush=True)
    for channel, url in stack.webhook_urls().items():
        print(f"  {channel:<10} {url}")
    if stack.dev_secrets:
        print("development secrets (set these variables yourself to choose them):")
        for name, value in stack.dev_secrets.items():
            print(f"  {name}={value}")
    print(f"AWS emulator: {stack.emulator.endpoint} · clock speed ×{args.speed:g} · Ctrl-C stops", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("leadflow up: stopped", flush=True)
    return 0


# --------------------------------------------------------------------------- reading the stack


def _connected(args: argparse.Namespace, function: str = "route") -> dict:
    state = read_state(getattr(args, "port", None))
    connect(state, function)
    return state


def cmd_leads(args: argparse.Namespace) -> int:
    from leadflow_local.inspect import all_leads

    _connected(args)
    leads = [lead.public_view() for lead in all_leads()]
    if args.json:
        _print_json(leads)
        return 0
    if not leads:
        print("no leads yet")
    for lead in leads:
        contact = lead["contact"]
        when = " ".join(v for v in (lead["preferred_date"], lead["preferred_time"]) if v)
        print(
            f"{lead['lead_id']}  {lead['status']:<10} {lead['channel']:<9} {lead['temperature'] or '-':<5} "
            f"{lead['intent'] or '-':<10} {lead['service'] or '-':<16} {when or '-':<17} "
            f"owner={lead['owner'] or '-':<7} {contact['name'] or ''}"
        )
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
    from leadflow_local.inspect import all_leads

    _connected(args)
    since = date.fromisoformat(args.since) if args.since else None
    leads = [lead for lead in all_leads() if since is None or lead.received_at.date() >= since]
    kpis = compute_kpis(leads, tz=wiring.business().tz)
    if args.json:
        _print_json(kpis)
        return 0
    print_kpis(kpis)
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

    state = _connected(args)
    if args.action == "redrive":
        moved = redrive(state)
        print(f"redrove {moved} message(s)")
        return 0
    messages = dlq_messages(state)
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

    event = json.loads(Path(args.event).read_text(encoding="utf-8"))
    try:
        state: dict | None = read_state(getattr(args, "port", None))
    except NotRunning:
        state = None
    _print_json(invoke_function(args.function, event, state))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from leadflow_local.demo import run_demo

    return run_demo(speed=args.speed)


def cmd_qualify(args: argparse.Namespace) -> int:
    from leadflow_local.qualify_cmd import run

    return run(args.catalog, args.engine, sys.stdin, sys.stdout)


def cmd_config(args: argparse.Namespace) -> int:
    from leadflow.business import ConfigError, load_business_config

    try:
        business = load_business_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.action == "check":
        from leadflow.business import locate
        from leadflow.domain.config_review import config_warnings

        text = Path(args.file).read_text(encoding="utf-8")
        for loc, warning in config_warnings(business):
            line = locate(text, loc)
            where = ".".join(str(part) for part in loc) + (f" (line {line})" if line else "")
            print(f"{args.file}: {where}: warning: {warning}")
        print(f"{args.file}: ok ({len(business.services)} services, {len(business.staff)} staff, "
              f"{len(business.routing)} routing rules)")  # fmt: skip
        return 0
    from leadflow import wiring

    if args.table:  # a deployed stack: its ConfigTable (AWS credentials from the environment)
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
        code, link = invite(args.staff_id, args.bot)
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
    up.set_defaults(func=cmd_up)

    def with_port(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--port", type=int, help="the running stack's gateway port (default: the state file)")
        return p

    for name, func, text in (
        ("leads", cmd_leads, "list leads"),
        ("outbox", cmd_outbox, "messages sent or recorded"),
    ):
        p = with_port(sub.add_parser(name, help=text))
        p.add_argument("--json", action="store_true", help="one JSON array")
        p.set_defaults(func=func)

    kpi = with_port(
        sub.add_parser("kpi", help="first response, acceptance, conversion, no-shows, SLA breaches")
    )
    kpi.add_argument("--json", action="store_true")
    kpi.add_argument("--since", help="YYYY-MM-DD")
    kpi.set_defaults(func=cmd_kpi)

    book = with_port(sub.add_parser("book", help="record an appointment for a lead (reminders follow)"))
    book.add_argument("lead")
    book.add_argument("--at", required=True, help="ISO 8601 time, e.g. 2026-03-20T15:00+07:00")
    book.set_defaults(func=cmd_book)

    dlq = with_port(
        sub.add_parser("dlq", help="show dead-lettered messages with their reason, or redrive them")
    )
    dlq.add_argument("action", nargs="?", choices=["redrive"])
    dlq.add_argument("--json", action="store_true")
    dlq.set_defaults(func=cmd_dlq)

    invoke = with_port(
        sub.add_parser("invoke", help="run one handler in-process (sam local invoke without Docker)")
    )
    invoke.add_argument("function", choices=["ingest", "score", "route", "escalate", "remind"])
    invoke.add_argument("-e", "--event", required=True, help="event JSON file (see events/)")
    invoke.set_defaults(func=cmd_invoke)

    demo = sub.add_parser(
        "demo", help="start the stack, replay a realistic stream of leads, print what happened"
    )
    demo.add_argument("--speed", type=float, default=600.0, help="clock speed while the SLA ladder plays out")
    demo.set_defaults(func=cmd_demo)

    qualify = sub.add_parser(
        "qualify", help="JSON lines in (id, text, received_at, channel) → qualification out"
    )
    qualify.add_argument("--catalog", required=True, help="YAML with timezone and services")
    qualify.add_argument("--engine", choices=["offline", "llm"], default="offline")
    qualify.set_defaults(func=cmd_qualify)

    config = sub.add_parser("config", help="validate or store the business config")
    config.add_argument("action", choices=["check", "push"])
    config.add_argument("file")
    config.add_argument("--port", type=int)
    config.add_argument("--table", help="push to a deployed stack's ConfigTable instead of the local stack")
    config.set_defaults(func=cmd_config)

    forget = with_port(
        sub.add_parser("forget", help="erase a person by phone (152-FZ), and say what was erased")
    )
    forget.add_argument("phone")
    forget.set_defaults(func=cmd_forget)

    staff = sub.add_parser("staff", help="staff onboarding")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    inv = with_port(staff_sub.add_parser("invite", help="a one-time /start link for a staff member"))
    inv.add_argument("staff_id")
    inv.add_argument("--bot", help="bot username, to print a t.me link")
    inv.set_defaults(func=cmd_staff)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except NotRunning as exc:
        print(f"leadflow {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
