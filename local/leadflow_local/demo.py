"""`leadflow demo` (and `make demo`): start the stack, replay a realistic stream of leads through
the webhooks, let staff act from Telegram and the SLA ladder play out on a fast clock, then print
what happened and the KPIs. Exits 0 when every step did what it should; 1 otherwise.

`leadflow demo --crm sheets` runs the same story with the example business's CRM a Google sheet
(``crm: {kind: sheets, …}``): a stand-in of Google's token endpoint and Sheets API
(leadflow_local.sheets_standin) holds the sheet, the service account's key is made for the run,
and the sheet's rows are printed at the end as the owner sees them."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from leadflow_local.webhooks import VK_COMMUNITY, Webhooks

STAFF_CHAT_ANNA = 5001
# The demo's clients' files (served by a stand-in CDN; the voice's words known to a stand-in transcriber).
DEMO_PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8 + b"\xff\xd9"
DEMO_VOICE = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(255, -1, -1)) * 12
VOICE_WORDS = "Здравствуйте! Хочу подстричься в пятницу в 18:00, меня зовут Дарья"
PHOTO_CAPTION = "Хочу такой дизайн на маникюр 💅 Можно завтра в 12:00? Вика"
# `--crm sheets`: the owner's spreadsheet (an id shaped like Google's) and its tab.
DEMO_SPREADSHEET = "1LaimSalonLeadsDemoSheet0123456789abcdef"
DEMO_TAB = "Лиды"
CRMS = ("builtin", "sheets")


def _next_working_morning(tz_name: str) -> datetime:
    """Where the demo's clock starts: 10:05 on the coming Saturday, a salon's busiest morning."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(tz_name)
    today = datetime.now(tz).date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    return datetime(saturday.year, saturday.month, saturday.day, 10, 5, tzinfo=tz)


def run_demo(
    speed: float = 600.0, state_dir: Path | None = None, crm: str = "builtin", keep: bool = False
) -> int:
    from leadflow import clock, wiring
    from leadflow.business import load_business_config
    from leadflow.settings import reset_caches
    from leadflow_local.inspect import all_leads, invite, outbox
    from leadflow_local.stack import EXAMPLE_CONFIG, LocalStack, _free_port
    from leadflow_local.standins import StandIns

    if crm not in CRMS:
        raise ValueError(f"crm: {crm!r} is not one of {', '.join(CRMS)}")
    state_dir = state_dir or Path(".leadflow")
    business = load_business_config(EXAMPLE_CONFIG)
    # Voice messages are transcribed by a stand-in of an OpenAI-compatible endpoint, for this run only.
    standins = StandIns().__enter__()
    names = ("TRANSCRIBE_API_KEY", "TRANSCRIBE_BASE_URL", *SHEETS_ENVIRONMENT)
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(TRANSCRIBE_API_KEY=standins.api_key, TRANSCRIBE_BASE_URL=f"{standins.url}/v1")
    config_path, sheets = None, None
    if crm == "sheets":
        sheets, config_path = _sheets_standin(state_dir)
    # The demo's salon books for real: the assistant offers free slots and books the client's pick.
    config_path = _with_booking(config_path or EXAMPLE_CONFIG, state_dir)
    business = load_business_config(config_path)
    start = _next_working_morning(business.timezone)
    stack = LocalStack(
        port=_free_port(), speed=1.0, clock_start=start, state_dir=state_dir, config_path=config_path
    )
    problems: list[str] = []
    # The demo's VK messages come from its own community: checked like a configured one (set
    # before the workers start; the stack restores the environment when it stops).
    os.environ["VK_GROUP_ID"] = str(VK_COMMUNITY)
    reset_caches()
    stack.start()
    try:
        print(
            f"leadflow demo: the example business ({EXAMPLE_CONFIG.name}) on a local stack at {stack.url};\n"
            f"the clock reads {start:%A %d.%m %H:%M} ({business.timezone}). Lines marked │ are quoted as\n"
            f"the client or the staff member sees them, in Russian.\n"
        )
        if sheets:
            print(
                f"Its CRM is a Google sheet (crm: {{kind: sheets}}): the tab «{DEMO_TAB}» of spreadsheet\n"
                f"{DEMO_SPREADSHEET}, shared with {sheets.account},\n"
                f"on a stand-in of Google's token endpoint and Sheets API at {sheets.url}.\n"
            )
        hooks = Webhooks(stack.url, stack.state()["secrets"])

        def now() -> datetime:
            return clock.now()

        # Staff onboarding: Anna opens her one-time invite link in Telegram. The others never do.
        code, _ = invite("anna", None)
        hooks.post(hooks.telegram_command(STAFF_CHAT_ANNA, f"/start inv-{code}", now()))
        print(
            "Anna (administrator) opens her invite link in Telegram; the other staff have not connected yet.\n"
        )

        photo = standins.add_file("design.jpg", DEMO_PHOTO, "image/jpeg")
        voice = standins.add_recording("voice.mp3", DEMO_VOICE, "audio/mpeg", VOICE_WORDS)
        recording = {"type": "audio_message", "audio_message": {
            "id": 456239017, "owner_id": 190000456, "duration": 5, "link_mp3": voice, "link_ogg": voice}}  # fmt: skip
        stream = [
            ("telegram: booking without a phone", hooks.telegram_text(
                70001, "Ирина", "Здравствуйте! Хочу на маникюр завтра в 15:00 в центре. Меня зовут Ирина", now(), update_id=555001)),
            ("telegram: the same update delivered twice", hooks.telegram_text(
                70001, "Ирина", "Здравствуйте! Хочу на маникюр завтра в 15:00 в центре. Меня зовут Ирина", now(), update_id=555001)),
            ("whatsapp: a price question", hooks.whatsapp_text(
                "+79235551122", "Ольга", "Добрый день, сколько стоит окрашивание корней?", now())),
            ("instagram: booking for Saturday", hooks.instagram_text(
                "17841455512345678", "Можно на стрижку в субботу после 18? Катя, 8 913 222 33 44", now())),
            ("vk: spam", hooks.vk_message(
                190000123, "Продвижение вашего салона в ТОП Яндекса! Первые клиенты уже через неделю", now())),
            ("form (Tilda): facial with UTM", hooks.tilda_form({
                "Name": "Светлана", "Phone": "+7 (923) 555-12-34", "Услуга": "Чистка лица",
                "Комментарий": "Хочу в понедельник вечером", "Филиал": "Академгородок", "utm_source": "instagram", "utm_medium": "cpc",
                "utm_campaign": "march8", "promo": "ROSES"})),
            ("call: missed call", hooks.missed_call("+79135550077", "+73912000000", now())),
            ("instagram: a photo «хочу такой дизайн»", hooks.instagram_text(
                "17841455598765432", PHOTO_CAPTION, now(), attachments=[{"type": "image", "payload": {"url": photo}}])),
            ("vk: a voice message", hooks.vk_message(190000456, "", now(), attachments=[recording])),
        ]  # fmt: skip
        for title, delivery in stream:
            answer = hooks.post(delivery)
            print(f"→ {title:<45} {answer.status_code} {answer.text[:20]}")
            if answer.status_code != 200:
                problems.append(f"{title}: HTTP {answer.status_code}")
        stack.drain()
        # A client picks one of the slots the assistant offered, and gets the confirmation.
        for title, text in (
            (
                "telegram: colouring on Monday evening",
                "Хочу на окрашивание в понедельник вечером, Центр. Марина",
            ),
            ("telegram: she picks the second slot", "давайте второе"),
        ):
            answer = hooks.post(hooks.telegram_text(70002, "Марина", text, now()))
            print(f"→ {title:<45} {answer.status_code}")
            stack.drain()
        follow_up = hooks.telegram_text(70001, "Ирина", "мой номер +7 913 840-27-65", now())
        print(f"→ {'telegram: the client sends her phone':<45} {hooks.post(follow_up).status_code}")
        stack.drain()

        leads = {lead.contact.name: lead for lead in all_leads()}
        irina = leads.get("Ирина")
        ref = irina.card_ref() if irina is not None else None
        if irina is None or ref is None:
            problems.append("Irina's lead has no card")
        else:
            card_id = int(ref[1])  # the chat may hold a colon (staff:anna: recorded, not sent)
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

        print(f"\n…the clock runs ×{speed:g} now: an hour of SLA timers and reminders plays out in seconds")
        _speed_up(stack, speed)
        time.sleep(6)
        stack.drain()

        from leadflow.domain.kpi import compute_kpis
        from leadflow_local.inspect import next_timer
        from leadflow_local.report import aligned, leads_table, print_kpis

        leads, messages = all_leads(), outbox()
        _report(leads, messages, business)
        _print_media(leads, messages)
        print("\nLeads (as `leadflow leads` shows them)")
        print(leads_table(leads, business, next_timer))
        print("\nKPIs (as `leadflow kpi` shows them)")
        print_kpis(compute_kpis(leads, tz=business.tz), business)
        problems.extend(_check(leads, messages))
        if sheets:
            rows = sheets.rows(DEMO_SPREADSHEET, DEMO_TAB)
            print(f"\nThe Google sheet «{DEMO_TAB}» (as the owner sees it in the browser)")
            print("\n".join(f"  {line}" for line in aligned(rows, max_width=32)))
            problems.extend(_check_sheet(leads, rows))
        if keep:
            _keep_running(stack, problems)
        else:
            print("\n(`leadflow demo --keep` leaves this stack running and prints a login link to the panel)")
    finally:
        stack.stop()
        standins.__exit__()
        if sheets:
            sheets.__exit__()
        if config_path:
            config_path.unlink(missing_ok=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
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


SHEETS_ENVIRONMENT = ("GOOGLE_SERVICE_ACCOUNT_JSON", "GOOGLE_SHEETS_API_BASE", "GOOGLE_OAUTH_TOKEN_URL")


def _with_booking(source: Path, state_dir: Path) -> Path:
    """The demo's config: ``source`` with the booking section (DEMO_BOOKING) added."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "demo-business-booking.yaml"
    path.write_text(source.read_text(encoding="utf-8").rstrip("\n") + "\n" + DEMO_BOOKING, encoding="utf-8")
    return path


def _sheets_standin(state_dir: Path) -> tuple[Any, Path]:
    """Google's token endpoint and Sheets API on 127.0.0.1 with the owner's empty sheet shared with
    a service account made for this run; the environment pointed at them; the example config with
    ``crm: {kind: sheets}`` written beside the state (the stack stores it as the business config)."""
    import yaml

    from leadflow_local.sheets_standin import GoogleSheets, service_account_json
    from leadflow_local.stack import EXAMPLE_CONFIG

    sheets = GoogleSheets().__enter__()
    sheets.create(DEMO_SPREADSHEET, DEMO_TAB)
    os.environ.update(
        GOOGLE_SERVICE_ACCOUNT_JSON=service_account_json(sheets.account),
        GOOGLE_SHEETS_API_BASE=sheets.url,
        GOOGLE_OAUTH_TOKEN_URL=sheets.token_url,
    )
    config = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    config["crm"] = {
        **(config.get("crm") or {}),
        "kind": "sheets",
        "sheet": {"spreadsheet_id": DEMO_SPREADSHEET, "sheet": DEMO_TAB},
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "demo-business-sheets.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return sheets, path


def _check_sheet(leads, rows: list[list[Any]]) -> list[str]:
    """One row per lead the CRM gets (not the spam) under one header; Irina's row says she is booked."""
    from leadflow.adapters.crm.sheets_crm import COLUMNS
    from leadflow.domain.cards import STATUS_LABEL

    headers = dict(COLUMNS)
    if not rows or rows[0][: len(COLUMNS)] != [title for _, title in COLUMNS]:
        return ["the sheet has no header row of leadflow's columns"]
    id_at, status_at = rows[0].index(headers["lead_id"]), rows[0].index(headers["status"])
    ids = [row[id_at] if len(row) > id_at else "" for row in rows[1:]]
    problems = []
    if any(row[: len(COLUMNS)] == rows[0][: len(COLUMNS)] for row in rows[1:]):
        problems.append("the sheet's header row was written twice")
    targets = [lead for lead in leads if lead.intent != "not_target"]
    if sorted(ids) != sorted(lead.lead_id for lead in targets):
        problems.append(f"the sheet's rows {ids} are not one per target lead")
    irina = next((lead for lead in leads if lead.contact.name == "Ирина"), None)
    row = next((r for r in rows[1:] if irina and len(r) > status_at and r[id_at] == irina.lead_id), None)
    if irina is None or row is None or row[status_at] != STATUS_LABEL.get(str(irina.status)):
        problems.append("Irina's row in the sheet does not show her lead's status")
    return problems


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


DEMO_BOOKING = """booking:                 # the demo books for real (leadflow demo adds this section)
  enabled: true
  show_master: true
"""

# What each kind of outgoing message is, in words (any other kind: its name with spaces).
KIND_WORDS = {
    "reply": "the assistant",
    "client_message": "the assistant",
    "staff_reply": "a staff member, from the card",
    "booking_confirmation": "the booking confirmation",
    "staff_answer": "the bot",
    "sla_reminder": "SLA reminder",
    "escalation": "escalation to the senior",
    "callback_answer": "pop-up after a button",
    "client_media": "the client's file, under the card",
}
CARD_KINDS = ("lead_card", "card_update")


def _print_media(leads, messages) -> None:
    """The photo under its card, the voice's words on its card: what the owner sees of clients' files."""
    print("\nPhotos and voice messages (as the owner sees them)")
    for lead in leads:
        forwarded = [m for m in messages if m["lead_id"] == lead.lead_id and m["kind"] == "client_media"]
        for m in forwarded:
            print(f"  {m['channel']}→ {m['to']:<12} under the card: {m['text']}")
        for text in lead.recent_texts:
            if text.startswith("🎤"):
                print(f"  {lead.contact.name or lead.lead_id}'s card: — {text}")


def _words(kind: str) -> str:
    return KIND_WORDS.get(kind, kind.replace("_", " "))


def _quote(text: str) -> None:
    for line in text.splitlines() or [""]:
        print(f"    │ {line}")


def _report(leads, messages, business) -> None:
    """What clients and staff received: each message whole, each lead's card once (its last
    version for that person), staff who never connected said so in words."""
    from leadflow import wiring
    from leadflow.domain.cards import CHANNEL_LABEL, staff_name

    names = {lead.lead_id: lead.contact.name or "a client without a name" for lead in leads}
    channels = {lead.lead_id: CHANNEL_LABEL.get(lead.channel, lead.channel) for lead in leads}
    staff_of = {
        m["to"]: wiring.store().staff.staff_for_chat(m["to"]) for m in messages if m["channel"] == "telegram"
    }
    to_staff = [m for m in messages if m["to"].startswith("staff:") or staff_of.get(m["to"])]
    to_clients = [m for m in messages if m not in to_staff]

    print("\nWhat the clients received")
    for m in to_clients:
        how = "by SMS" if m["channel"] == "sms" else f"in {channels.get(m['lead_id'], m['channel'])}"
        print(f"  to {names.get(m['lead_id'], 'a client')} {how}, from {_words(m['kind'])}:")
        _quote(m["text"])

    chats: dict[str, list[dict]] = {}
    for m in to_staff:
        chats.setdefault(m["to"], []).append(m)
    print("\nWhat the staff received in Telegram")
    for chat, received in chats.items():
        if chat.startswith("staff:"):
            who = staff_name(business, chat.partition(":")[2])
            print(f"\n  {who} — not connected to the bot yet (written {chat}): recorded here, not sent")
        else:
            print(f"\n  {staff_name(business, staff_of[chat] or '')} (Telegram chat {chat})")
        last_card = {m["lead_id"]: m for m in received if m["kind"] in CARD_KINDS}
        for m in received:
            if m["kind"] not in CARD_KINDS:
                print(f"  {_words(m['kind'])}:")
                _quote(m["text"])
            elif last_card.get(m["lead_id"]) is m:
                edits = (
                    sum(1 for x in received if x["kind"] in CARD_KINDS and x["lead_id"] == m["lead_id"]) - 1
                )
                after = f", as it reads after {edits} update(s)" if edits else ""
                print(f"  the lead card of {names.get(m['lead_id'], 'a client')}{after}:")
                _quote(m["text"])


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
    if not any(m["kind"] == "reply" and m["text"].startswith("Готово! Записали вас") for m in messages):
        problems.append("the client who picked an offered slot got no confirmation")
    if not any(m["kind"] == "staff_reply" for m in messages):
        problems.append("the staff answer did not reach the client")
    if not any(m["kind"] in ("sla_reminder", "escalation") for m in messages):
        problems.append("no SLA reminder or escalation happened")
    vika = next((lead for lead in leads if lead.channel == "instagram" and lead.attachments), None)
    if (
        vika is None
        or not vika.card
        or not any(
            m["kind"] == "client_media"
            and m["status"] == "sent"
            and m["id"].startswith(f"media:{vika.card}:")
            for m in messages
        )
    ):
        problems.append("the client's photo did not reach the owner under the card")
    darya = next((lead for lead in leads if lead.channel == "vk" and "voice" in lead.media), None)
    cards = [
        m["text"] for m in messages if darya and m["lead_id"] == darya.lead_id and m["kind"] == "lead_card"
    ]
    if not cards or f"— 🎤 {VOICE_WORDS}" not in cards[-1]:
        problems.append("the voice message's words are not on its card")
    return problems
