"""`leadflow demo` (and `make demo`): start the stack, replay a realistic stream of leads through
the webhooks, let staff act from Telegram and the SLA ladder play out on a fast clock, then print
what happened and the KPIs. Exits 0 when every step did what it should; 1 otherwise."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from leadflow_local.webhooks import VK_COMMUNITY, Webhooks

STAFF_CHAT_ANNA = 5001


def _next_working_morning(tz_name: str) -> datetime:
    """Where the demo's clock starts: 10:05 on the coming Saturday, a salon's busiest morning."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(tz_name)
    today = datetime.now(tz).date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    return datetime(saturday.year, saturday.month, saturday.day, 10, 5, tzinfo=tz)


def run_demo(speed: float = 600.0, state_dir: Path | None = None, keep: bool = False) -> int:
    from leadflow import clock, wiring
    from leadflow.business import load_business_config
    from leadflow.settings import reset_caches
    from leadflow_local.inspect import all_leads, invite, outbox
    from leadflow_local.stack import EXAMPLE_CONFIG, LocalStack, _free_port

    business = load_business_config(EXAMPLE_CONFIG)
    start = _next_working_morning(business.timezone)
    stack = LocalStack(
        port=_free_port(), speed=1.0, clock_start=start, state_dir=state_dir or Path(".leadflow")
    )
    problems: list[str] = []
    stack.start()
    try:
        # The demo's VK messages come from its own community: checked like a configured one
        # (the stack restores the environment when it stops).
        os.environ["VK_GROUP_ID"] = str(VK_COMMUNITY)
        reset_caches()
        print(
            f"leadflow demo: stack up at {stack.url}; the clock reads {start:%A %d.%m %H:%M} ({business.timezone})\n"
        )
        hooks = Webhooks(stack.url, stack.state()["secrets"])

        def now() -> datetime:
            return clock.now()

        # Staff onboarding: Anna opens her one-time invite link in Telegram.
        code, _ = invite("anna", None)
        hooks.post(hooks.telegram_command(STAFF_CHAT_ANNA, f"/start inv-{code}", now()))

        stream = [
            ("telegram: booking without a phone", hooks.telegram_text(
                70001, "Ирина", "Здравствуйте! Хочу на маникюр завтра в 15:00. Меня зовут Ирина", now(), update_id=555001)),
            ("telegram: the same update delivered twice", hooks.telegram_text(
                70001, "Ирина", "Здравствуйте! Хочу на маникюр завтра в 15:00. Меня зовут Ирина", now(), update_id=555001)),
            ("whatsapp: a price question", hooks.whatsapp_text(
                "+79235551122", "Ольга", "Добрый день, сколько стоит окрашивание корней?", now())),
            ("instagram: booking for Saturday", hooks.instagram_text(
                "17841455512345678", "Можно на стрижку в субботу после 18? Катя, 8 913 222 33 44", now())),
            ("vk: spam", hooks.vk_message(
                190000123, "Продвижение вашего салона в ТОП Яндекса! Первые клиенты уже через неделю", now())),
            ("form (Tilda): facial with UTM", hooks.tilda_form({
                "Name": "Светлана", "Phone": "+7 (923) 555-12-34", "Услуга": "Чистка лица",
                "Комментарий": "Хочу в понедельник вечером", "utm_source": "instagram", "utm_medium": "cpc",
                "utm_campaign": "march8", "promo": "ROSES"})),
            ("call: missed call", hooks.missed_call("+79135550077", "+73912000000", now())),
        ]  # fmt: skip
        for title, delivery in stream:
            answer = hooks.post(delivery)
            print(f"→ {title:<45} {answer.status_code} {answer.text[:20]}")
            if answer.status_code != 200:
                problems.append(f"{title}: HTTP {answer.status_code}")
        stack.drain()
        follow_up = hooks.telegram_text(70001, "Ирина", "мой номер +7 913 840-27-65", now())
        print(f"→ {'telegram: the client sends her phone':<45} {hooks.post(follow_up).status_code}")
        stack.drain()

        leads = {lead.contact.name: lead for lead in all_leads()}
        irina = leads.get("Ирина")
        if irina is None or not irina.card:
            problems.append("Irina's lead has no card")
        else:
            card_id = int(irina.card.partition(":")[2])
            # Anna presses «Беру» on the card, answers the client from Telegram, and marks the lead
            # booked: the appointment that reminders work from.
            staff_steps = [
                ("staff: Anna presses «Беру» on Irina's card",
                 hooks.telegram_callback(STAFF_CHAT_ANNA, f"accept:{irina.lead_id}", card_id, now())),
                ("staff: Anna answers Irina from the card", hooks.telegram_reply_to_card(
                    STAFF_CHAT_ANNA, card_id, "Ирина, записала вас на завтра 15:00, мастер Анна 🌸", now(),
                    card_text=f"Лид {irina.lead_id}")),
                ("staff: Anna presses «Записан»",
                 hooks.telegram_callback(STAFF_CHAT_ANNA, f"book:{irina.lead_id}", card_id, now())),
            ]  # fmt: skip
            print()
            for title, delivery in staff_steps:
                answer = hooks.post(delivery)
                print(f"→ {title:<45} {answer.status_code}")
                if answer.status_code != 200:
                    problems.append(f"{title}: HTTP {answer.status_code}")
                stack.drain()
            _print_card(irina.lead_id, outbox())

        print(f"\n…the clock runs ×{speed:g} now: SLA ladders and reminders play out")
        _speed_up(stack, speed)
        time.sleep(6)
        stack.drain()

        _report(all_leads(), outbox(), business.tz)
        from leadflow.domain.kpi import compute_kpis
        from leadflow_local.report import print_kpis

        print("\nKPIs")
        print_kpis(compute_kpis(all_leads(), tz=business.tz))
        problems.extend(_check(all_leads(), outbox()))
        if keep:
            _keep_running(stack, problems)
        else:
            print("\n(`leadflow demo --keep` leaves this stack running and prints a login link to the panel)")
    finally:
        stack.stop()
        wiring.reset()
    if problems:
        print("\nleadflow demo: FAILED\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("\nleadflow demo: done")
    return 0


def _keep_running(stack, problems: list[str]) -> None:
    """`--keep`: the demo's stack stays up with its data, at normal speed, until Ctrl-C."""
    import contextlib
    import signal
    import threading

    _speed_up(stack, 1.0)
    print(f"\nleadflow demo: {'FAILED' if problems else 'done'}; the stack keeps running at {stack.url}")
    print(f"leadflow panel: {stack.panel_login_link()}", flush=True)
    print("Ctrl-C stops it", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()


def _speed_up(stack, speed: float) -> None:
    """Switch the running stack's clock to ``speed`` from this instant on, without a jump."""
    from leadflow import clock

    current = clock.now()
    os.environ["LEADFLOW_CLOCK_START"] = current.isoformat()
    os.environ["LEADFLOW_CLOCK_ORIGIN"] = str(time.time())
    os.environ["LEADFLOW_CLOCK_SPEED"] = str(speed)
    for thread in stack.threads:
        if thread.name == "scheduler":
            thread.speed = speed  # type: ignore[attr-defined]


def _print_card(lead_id: str, messages: list[dict]) -> None:
    """The lead's card as its owner sees it in Telegram now (the last edit of it)."""
    cards = [m for m in messages if m["lead_id"] == lead_id and m["kind"] in ("lead_card", "card_update")]
    if not cards:
        return
    print("\nIrina's card in Anna's Telegram now:")
    for line in cards[-1]["text"].splitlines():
        print(f"  │ {line}")


def _report(leads, messages, tz) -> None:
    print("\nLeads")
    for lead in leads:
        when = " ".join(str(v) for v in (lead.preferred_date, lead.preferred_time) if v)
        print(f"  {lead.lead_id} {lead.channel:<9} {lead.status:<10} {lead.intent or '-':<10} {lead.temperature or '-':<5} "
              f"{lead.service or '-':<16} {when or '-':<17} owner={lead.owner or '-':<7} {lead.contact.name or ''}")  # fmt: skip
        if lead.assignment_reason:
            print(f"      why: {lead.assignment_reason}")
    print("\nOutbox (what clients and staff received)")
    for m in messages:
        first_line = m["text"].splitlines()[0] if m["text"] else ""
        print(f"  {m['kind']:<13} {m['channel']:<8}→ {m['to']:<18} {first_line[:90]}")


def _check(leads, messages) -> list[str]:
    problems = []
    by_name = {lead.contact.name: lead for lead in leads}
    replies = [m for m in messages if m["kind"] == "reply"]
    if len([lead for lead in leads if lead.contact.name == "Ирина"]) != 1:
        problems.append("the duplicate Telegram delivery made a second lead")
    if not any(m["channel"] == "sms" and m["kind"] == "reply" for m in messages):
        problems.append("the missed call got no SMS")
    spam = [lead for lead in leads if lead.intent == "not_target"]
    if not spam or any(lead.owner for lead in spam):
        problems.append("spam was not recognised or got an owner")
    targets = [lead for lead in leads if lead.intent != "not_target"]
    if any(lead.owner is None for lead in targets):
        problems.append("a lead was left without an owner")
    if len(replies) < len(leads):
        problems.append("a lead got no instant reply")
    irina = by_name.get("Ирина")
    if irina is None or irina.accepted_at is None or irina.contact.phone != "+79138402765":
        problems.append("Irina's lead was not completed and accepted")
    elif irina.appointment_at is None:
        problems.append("Anna's «Записан» did not book Irina's visit")
    if not any(m["kind"] == "staff_reply" for m in messages):
        problems.append("the staff answer did not reach the client")
    if not any(m["kind"] in ("sla_reminder", "escalation") for m in messages):
        problems.append("no SLA reminder or escalation happened")
    return problems
