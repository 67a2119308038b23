"""The owner's panel through the real panel handler on the in-process AWS: getting in (one-time
links, sessions, cookies), CSRF, who sees what, and each page doing what its user would notice."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import boto3
import pytest

from leadflow import clock, wiring
from leadflow.domain.models import StaffEvent
from leadflow_local.functions import invoke
from leadflow_local.stack import api_gateway_event
from tests.support.aws import SALON, atomic_moto_writes, deliver_streams
from tests.support.builders import lead

NOW = datetime(2026, 3, 16, 5, 0, tzinfo=UTC)  # Monday 12:00 in Krasnoyarsk: the salon is open
HOST = "panel.example.com"
# The salon plus an owner, and a second branch with its own manager and specialist.
CONFIG = (
    SALON.read_text(encoding="utf-8")
    .replace(
        "  - {id: elena, name: Елена, role: senior, branch: center, capacity: 50}\n",
        "  - {id: elena, name: Елена, role: senior, branch: center, capacity: 50}\n"
        "  - {id: vera, name: Вера, role: owner, capacity: 0}\n"
        "  - {id: pavel, name: Павел, role: manager, branch: north, capacity: 50}\n"
        "  - {id: nina, name: Нина, role: specialist, skills: [nails], branch: north, capacity: 15}\n",
    )
    .replace(
        "branches:\n",
        "branches:\n  - id: north\n    name: Север\n",
        1,
    )
)


@pytest.fixture
def panel_aws(aws, monkeypatch):
    aws.push_config(CONFIG)
    monkeypatch.setenv("SCORE_DEAD_LETTER_QUEUE_URL", aws.queue_urls["ScoreDeadLetterQueue"])
    monkeypatch.setenv("ROUTE_DEAD_LETTER_QUEUE_URL", aws.queue_urls["RouteDeadLetterQueue"])
    monkeypatch.setenv("PUBLIC_BASE_URL", f"https://{HOST}")
    wiring.reset()
    clock.freeze(NOW)
    return aws


def call(method: str, path: str, *, query: str = "", form: dict | None = None, cookie: str | None = None,
         host: str = HOST, origin: str | None = None) -> dict:  # fmt: skip
    headers = {"host": host, "content-type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["cookie"] = cookie
    if origin:
        headers["origin"] = origin
    body = urlencode(form or {}).encode()
    deliver_streams()  # the lead facts the pages read, as the stream has brought them by now
    return invoke("panel", api_gateway_event(method, path, query, headers, body, "203.0.113.9"))


def login(aws, staff_id: str, host: str = HOST) -> str:
    """A session cookie ('lf_session=…') for staff_id, through a real link and its «Войти»."""
    token = aws.store.panel.issue_login(staff_id, clock.wall_now() + timedelta(minutes=10))
    answer = call("POST", "/panel/login", form={"t": token}, host=host)
    assert answer["statusCode"] == 303, answer["body"]
    return answer["cookies"][0].split(";")[0]


def csrf_of(page: dict) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page["body"])
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def stored(aws, lead_id: str, **fields):
    item = lead(lead_id, **{"received_at": NOW - timedelta(hours=1), "last_message_at": NOW - timedelta(hours=1),
                            **fields})  # fmt: skip
    assert aws.store.leads.create(item)
    if item.owner:
        aws.store.staff.take_lead(item.owner, lead_id)
    return item


# --------------------------------------------------------------------------- getting in


def test_opening_the_link_spends_nothing_and_the_button_logs_in_once(panel_aws):
    token = panel_aws.store.panel.issue_login("vera", clock.wall_now() + timedelta(minutes=10))
    for _ in range(2):  # a link preview, then the owner
        page = call("GET", "/panel/login", query=urlencode({"t": token}))
        assert page["statusCode"] == 200 and "Войти" in page["body"]
        assert page["headers"]["Referrer-Policy"] == "no-referrer"
    first = call("POST", "/panel/login", form={"t": token})
    assert first["statusCode"] == 303 and first["headers"]["Location"] == "/panel/summary"
    (cookie,) = first["cookies"]
    assert {"HttpOnly", "Secure", "SameSite=Lax", "Path=/panel"} <= {p.strip() for p in cookie.split(";")}
    replay = call("POST", "/panel/login", form={"t": token})
    assert replay["statusCode"] == 410 and "cookies" not in replay
    assert call("GET", "/panel/login", query=urlencode({"t": token}))["statusCode"] == 410
    summary = call("GET", "/panel/summary", cookie=cookie.split(";")[0])
    assert summary["statusCode"] == 200 and "Сводка" in summary["body"]


def test_on_localhost_the_cookie_is_not_secure_only(panel_aws):
    token = panel_aws.store.panel.issue_login("vera", clock.wall_now() + timedelta(minutes=10))
    (cookie,) = call("POST", "/panel/login", form={"t": token}, host="127.0.0.1:3000")["cookies"]
    assert "Secure" not in cookie and "HttpOnly" in cookie


def test_a_link_expires_after_ten_minutes(panel_aws):
    from leadflow.steps.panel.auth import issue_login_link

    link = issue_login_link(panel_aws.store.panel, "vera", f"https://{HOST}")
    token = link.split("t=", 1)[1]
    clock.advance(timedelta(minutes=10, seconds=1))
    assert call("GET", "/panel/login", query=f"t={token}")["statusCode"] == 410
    assert call("POST", "/panel/login", form={"t": token})["statusCode"] == 410


def test_one_link_posted_at_once_from_many_places_opens_one_session(panel_aws):
    token = panel_aws.store.panel.issue_login("vera", clock.wall_now() + timedelta(minutes=10))
    event = api_gateway_event("POST", "/panel/login", "", {"host": HOST, "content-type":
                              "application/x-www-form-urlencoded"}, urlencode({"t": token}).encode(), "1.2.3.4")  # fmt: skip
    step = wiring.panel_step()
    with atomic_moto_writes(), ThreadPoolExecutor(8) as pool:  # each write atomic, as in DynamoDB
        answers = list(pool.map(lambda _: step.handle_event(event), range(8)))
    assert sorted(a["statusCode"] for a in answers) == [303] + [410] * 7


def test_a_forged_or_expired_session_is_no_session(panel_aws):
    assert call("GET", "/panel/summary", cookie="lf_session=forged")["statusCode"] == 401
    cookie = login(panel_aws, "vera")
    clock.advance(timedelta(days=8))  # past the session's life, before TTL removed the item
    page = call("GET", "/panel/summary", cookie=cookie)
    assert page["statusCode"] == 401 and "/panel" in page["body"]


def test_logout_ends_the_session(panel_aws):
    cookie = login(panel_aws, "vera")
    page = call("GET", "/panel/logout", cookie=cookie)
    answer = call("POST", "/panel/logout", form={"csrf": csrf_of(page)}, cookie=cookie)
    assert answer["statusCode"] == 200 and "Max-Age=0" in answer["cookies"][0]
    assert call("GET", "/panel/summary", cookie=cookie)["statusCode"] == 401


def test_the_bot_answers_panel_with_a_link_without_preview(panel_aws):
    panel_aws.store.staff.connect_chat("elena", "500")
    event = StaffEvent(
        event_id="tg:9", chat_id="500", user_id="500", action="/panel", text="", received_at=NOW
    )
    wiring.workspace(wiring.business()).handle(event)
    items = panel_aws.store.conversation.table.scan()["Items"]
    (sent,) = [i for i in items if i.get("kind") == "panel_link"]
    link = re.search(r"https://\S+", sent["text"]).group(0)
    assert link.startswith(f"https://{HOST}/panel/login?t=")
    page = call("GET", "/panel/login", query=link.split("?", 1)[1])
    assert page["statusCode"] == 200 and "Войти" in page["body"]


def test_telegram_is_asked_for_no_link_preview():
    from leadflow.adapters.channels.telegram import TelegramBot

    seen = {}

    class Bot(TelegramBot):
        def call(self, method, params):
            seen.update(params)
            return {"message_id": 1}

    Bot("123:abc").send_message(1, "https://x/panel/login?t=1", link_preview=False)
    assert seen["link_preview_options"] == {"is_disabled": True}


# --------------------------------------------------------------------------- CSRF


def test_a_post_without_the_csrf_token_or_from_another_site_is_refused(panel_aws):
    stored(panel_aws, "L1", owner="anna", status="assigned", assigned_at=NOW)
    cookie = login(panel_aws, "vera")
    page = call("GET", "/panel/leads/L1", cookie=cookie)
    token = csrf_of(page)
    assert call("POST", "/panel/leads/L1/lose", form={"reason": "x"}, cookie=cookie)["statusCode"] == 403
    assert (
        call("POST", "/panel/leads/L1/lose", form={"reason": "x", "csrf": "guess"}, cookie=cookie)[
            "statusCode"
        ]
        == 403
    )
    evil = call(
        "POST", "/panel/leads/L1/lose", form={"csrf": token}, cookie=cookie, origin="https://evil.example"
    )
    assert evil["statusCode"] == 403
    assert panel_aws.store.leads.get("L1").status == "assigned"
    done = call("POST", "/panel/leads/L1/lose", form={"csrf": token, "reason": "дорого"}, cookie=cookie,
                origin=f"https://{HOST}")  # fmt: skip
    assert done["statusCode"] == 303
    assert panel_aws.store.leads.get("L1").status == "lost"


# --------------------------------------------------------------------------- who sees what


def _lead_ids(page: dict) -> set[str]:
    return set(re.findall(r'href="/panel/leads/([^"?/]+)"', page["body"]))


def test_each_role_sees_its_own_share_of_the_leads(panel_aws):
    stored(panel_aws, "A1", owner="anna", branch="center")
    stored(panel_aws, "K1", owner="katya", branch="center")
    stored(panel_aws, "N1", owner="nina", branch="north")
    seen = {who: _lead_ids(call("GET", "/panel/leads", cookie=login(panel_aws, who)))
            for who in ("vera", "elena", "marina", "pavel", "anna")}  # fmt: skip
    assert seen == {
        "vera": {"A1", "K1", "N1"},
        "elena": {"A1", "K1", "N1"},
        "marina": {"A1", "K1"},
        "pavel": {"N1"},
        "anna": {"A1"},
    }
    anna = login(panel_aws, "anna")
    assert call("GET", "/panel/leads/K1", cookie=anna)["statusCode"] == 403
    assert call("GET", "/panel/leads/A1", cookie=anna)["statusCode"] == 200
    assert call("GET", "/panel/problems", cookie=anna)["statusCode"] == 403
    assert call("GET", "/panel/staff", cookie=anna)["statusCode"] == 403
    assert call("GET", "/panel/leads/nope", cookie=anna)["statusCode"] == 404


def test_what_clients_typed_is_shown_as_text(panel_aws):
    stored(panel_aws, "X1", owner="anna", contact={"name": "<script>alert(1)</script>"})
    panel_aws.store.conversation.add_staff_note(
        "X1", "e1", NOW, staff_id="anna", text='<img src=x onerror="alert(2)">'
    )
    cookie = login(panel_aws, "vera")
    for path in ("/panel/leads", "/panel/leads/X1"):
        body = call("GET", path, cookie=cookie)["body"]
        assert "<script>alert" not in body and "<img src=x" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


# --------------------------------------------------------------------------- pages


def test_the_summary_counts_the_leads_of_the_period(panel_aws):
    for i in range(3):
        stored(panel_aws, f"T{i}", owner="anna", channel="telegram",
               first_reply_at=NOW - timedelta(hours=1) + timedelta(seconds=10 * (i + 1)))  # fmt: skip
    stored(panel_aws, "W1", owner="olga", channel="whatsapp", status="booked",
           appointment_at=NOW + timedelta(days=1))  # fmt: skip
    old = lead("OLD", received_at=NOW - timedelta(days=40), last_message_at=NOW - timedelta(days=40))
    panel_aws.store.leads.create(old)
    cookie = login(panel_aws, "vera")
    week = call("GET", "/panel/summary", query="period=7", cookie=cookie)["body"]
    assert re.search(r'id="kpi-leads">4<', week) and re.search(r'id="kpi-booked">1<', week)
    assert "<svg" in week and "WhatsApp" in week
    anna = call("GET", "/panel/summary", query="period=7", cookie=login(panel_aws, "anna"))["body"]
    assert re.search(r'id="kpi-leads">3<', anna)  # a specialist's own numbers


def test_a_lead_is_found_by_its_phone_however_it_is_written(panel_aws):
    stored(panel_aws, "P1", owner="anna", contact={"name": "Ирина", "phone": "+79131234567"})
    stored(panel_aws, "P2", owner="anna", contact={"name": "Ольга", "phone": "+79130000000"})
    cookie = login(panel_aws, "vera")
    assert _lead_ids(
        call("GET", "/panel/leads", query=urlencode({"q": "8 913 123-45-67"}), cookie=cookie)
    ) == {"P1"}
    assert _lead_ids(call("GET", "/panel/leads", query=urlencode({"q": "ир"}), cookie=cookie)) == {"P1"}


def test_reassigning_a_lead_to_a_colleague(panel_aws):
    stored(
        panel_aws, "R1", owner="anna", status="assigned", assigned_at=NOW, service="manicure", branch="center"
    )
    cookie = login(panel_aws, "vera")
    token = csrf_of(call("GET", "/panel/leads/R1", cookie=cookie))
    answer = call("POST", "/panel/leads/R1/reassign", form={"csrf": token, "to": "katya"}, cookie=cookie)
    assert answer["statusCode"] == 303
    assert panel_aws.store.leads.get("R1").owner == "katya"
    states = panel_aws.store.staff.state(["anna", "katya"])
    assert (states["anna"].open_leads, states["katya"].open_leads) == (0, 1)


def test_deactivating_a_member_ends_their_sessions_and_hands_their_leads_on(panel_aws):
    stored(
        panel_aws, "D1", owner="anna", status="accepted", accepted_at=NOW, service="manicure", branch="center"
    )
    anna = login(panel_aws, "anna")
    owner = login(panel_aws, "vera")
    token = csrf_of(call("GET", "/panel/staff", cookie=owner))
    answer = call("POST", "/panel/staff/anna/deactivate", form={"csrf": token}, cookie=owner)
    assert answer["statusCode"] == 303
    moved = panel_aws.store.leads.get("D1")
    assert moved.owner == "katya" and moved.status == "assigned"  # the new owner takes it again
    assert call("GET", "/panel/summary", cookie=anna)["statusCode"] == 401
    wiring.reset()
    assert wiring.business().staff_member("anna").active is False
    assert panel_aws.store.staff.state(["anna"])["anna"].open_leads == 0


def test_deactivating_keeps_the_owners_comments_and_every_other_line(panel_aws):
    commented = CONFIG.replace("staff:\n", "staff:  # кто работает\n  # Анна — новенькая, до мая\n", 1)
    panel_aws.push_config(commented)
    wiring.reset()
    owner = login(panel_aws, "vera")
    token = csrf_of(call("GET", "/panel/staff", cookie=owner))
    assert (
        call("POST", "/panel/staff/anna/deactivate", form={"csrf": token}, cookie=owner)["statusCode"] == 303
    )
    stored_text = panel_aws.store.config.yaml_text()
    before, after = commented.splitlines(), stored_text.splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1 and "id: anna" in changed[0][1] and changed[0][1].endswith("active: false}")
    assert "  # Анна — новенькая, до мая" in after and "staff:  # кто работает" in after


def test_an_invite_is_a_t_me_link_with_its_qr_code_when_the_bot_is_named(panel_aws, monkeypatch):
    import segno

    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "@lime_salon_bot")
    wiring.reset()
    owner = login(panel_aws, "vera")
    token = csrf_of(call("GET", "/panel/staff", cookie=owner))
    answer = call("POST", "/panel/staff/anna/invite", form={"csrf": token}, cookie=owner)
    assert answer["statusCode"] == 303
    page = call("GET", "/panel/staff", query=answer["headers"]["Location"].split("?", 1)[1], cookie=owner)[
        "body"
    ]
    link = re.search(r'href="(https://t\.me/lime_salon_bot\?start=inv-([A-Za-z0-9]+))"', page)
    assert link and "Приглашение для Анна" in page
    assert panel_aws.store.staff.redeem_invite(link.group(2), clock.wall_now()) == "anna"  # the stored invite
    qr = re.search(r'<div class="qr"[^>]*>(<svg.*?</svg>)</div>', page, re.S).group(1)
    # The code drawn is the QR of exactly that link (and not, say, of the bare command).
    assert qr == segno.make(link.group(1), error="m").svg_inline(scale=4, border=2, dark="#111", light="#fff")


def test_without_the_bots_name_the_invite_is_a_command_and_says_what_to_set(panel_aws):
    owner = login(panel_aws, "vera")
    token = csrf_of(call("GET", "/panel/staff", cookie=owner))
    answer = call("POST", "/panel/staff/anna/invite", form={"csrf": token}, cookie=owner)
    page = call("GET", "/panel/staff", query=answer["headers"]["Location"].split("?", 1)[1], cookie=owner)[
        "body"
    ]
    assert re.search(r"отправит боту <b>/start inv-[A-Za-z0-9]+</b>", page)
    assert "TELEGRAM_BOT_USERNAME" in page and "<svg" not in page
    # A forged invite parameter is neither shown nor drawn.
    forged = call("GET", "/panel/staff", query="invite=%3Cscript%3E&for=anna", cookie=owner)["body"]
    assert "<script>" not in forged and 'id="invite"' not in forged


def test_only_the_owner_may_deactivate(panel_aws):
    elena = login(panel_aws, "elena")
    token = csrf_of(call("GET", "/panel/staff", cookie=elena))
    assert (
        call("POST", "/panel/staff/anna/deactivate", form={"csrf": token}, cookie=elena)["statusCode"] == 403
    )
    assert wiring.business().staff_member("anna").active is True


def test_a_dead_letter_is_listed_with_its_reason_and_redriven(panel_aws):
    sqs = boto3.client("sqs", region_name="eu-central-1")
    sqs.send_message(
        QueueUrl=panel_aws.queue_urls["ScoreDeadLetterQueue"],
        MessageBody='{"type": "inbound", "message_id": "m1"}',
        MessageAttributes={"reason": {"DataType": "String", "StringValue": "ValueError: broken <b>"}},
    )
    cookie = login(panel_aws, "vera")
    page = call("GET", "/panel/problems", cookie=cookie)
    assert "ValueError: broken &lt;b&gt;" in page["body"] and "Повторить" in page["body"]
    message_id = re.search(r'name="message_id" value="([^"]+)"', page["body"]).group(1)
    answer = call("POST", "/panel/problems/redrive", cookie=cookie,
                  form={"csrf": csrf_of(page), "queue": "score", "message_id": message_id})  # fmt: skip
    assert answer["statusCode"] == 303 and "redriven" in answer["headers"]["Location"]
    assert [m["Body"] for m in panel_aws.receive("ScoreQueue")] == ['{"type": "inbound", "message_id": "m1"}']
    assert "Всё работает" in call("GET", "/panel/problems", cookie=cookie)["body"]


def test_what_if_names_who_would_get_a_lead_and_changes_nobodys_load(panel_aws):
    cookie = login(panel_aws, "vera")
    before = panel_aws.store.staff.state(["anna", "katya"])
    query = urlencode({"try": "1", "channel": "telegram", "service": "manicure", "branch": "center"})
    body = call("GET", "/panel/rules", query=query, cookie=cookie)["body"]
    found = re.search(r'id="what-if">Правило <b>([^<]+)</b> → <b>([^<]+)</b>', body)
    assert found and found.group(2) in ("Анна", "Катя")
    assert panel_aws.store.staff.state(["anna", "katya"]) == before


def test_the_filtered_list_downloads_as_csv_for_excel(panel_aws):
    stored(panel_aws, "C1", owner="anna", channel="telegram", contact={"name": '=HYPERLINK("x")'})
    stored(panel_aws, "C2", owner="olga", channel="whatsapp", contact={"name": "Ольга"})
    answer = call("GET", "/panel/leads.csv", query="channel=telegram", cookie=login(panel_aws, "vera"))
    assert answer["statusCode"] == 200 and answer["headers"]["Content-Type"].startswith("text/csv")
    body = answer["body"]
    assert body.startswith("\ufeffЗаявка;Получена;Клиент")
    rows = body.lstrip("\ufeff").splitlines()
    assert len(rows) == 2 and rows[1].startswith("C1;")
    import csv

    assert next(csv.reader([rows[1]], delimiter=";"))[2] == '\'=HYPERLINK("x")'  # text, never a formula
    mine = (
        call("GET", "/panel/leads.csv", cookie=login(panel_aws, "olga"))["body"].lstrip("\ufeff").splitlines()
    )
    assert [row.split(";")[0] for row in mine[1:]] == ["C2"]


def test_problems_show_undelivered_messages_and_timers_that_gave_up(panel_aws):
    import time

    from leadflow.domain.models import OutboundMessage
    from leadflow.domain.plans import Timer

    stored(panel_aws, "U1", owner="anna", contact={"name": "Ирина"})
    message = OutboundMessage(id="reply:U1", channel="whatsapp", to="79131234567", lead_id="U1", kind="reply",
                              text="Здравствуйте!")  # fmt: skip
    panel_aws.store.conversation.claim_outbound(message, NOW, claim_until=time.time() + 60)
    panel_aws.store.conversation.finish_outbound(
        message, "failed", NOW, error="whatsapp: 131047 window closed"
    )
    timer = Timer("appt#U1#24", "remind", "reminder", clock.iso(NOW), lead_id="U1")
    panel_aws.store.timers.put(timer)
    panel_aws.store.timers.give_up(timer, "SendError: chat not found", NOW)
    boto3.client("sqs", region_name="eu-central-1").send_message(
        QueueUrl=panel_aws.queue_urls["RouteDeadLetterQueue"], MessageBody='{"type": "staff"}',
        MessageAttributes={"reason": {"DataType": "String", "StringValue": "KeyError: card"}},
    )  # fmt: skip
    body = call("GET", "/panel/problems", cookie=login(panel_aws, "elena"))["body"]
    assert "131047 window closed" in body and "SendError: chat not found" in body and "KeyError: card" in body
    assert "Всё работает" not in body
    assert "Повторить" not in body  # a senior sees the problems; redrive is the owner's


def test_a_day_off_from_the_panel_keeps_new_leads_away_until_tomorrow(panel_aws):
    marina = login(panel_aws, "marina")
    token = csrf_of(call("GET", "/panel/staff", cookie=marina))
    assert call("POST", "/panel/staff/anna/off", form={"csrf": token}, cookie=marina)["statusCode"] == 303
    state = panel_aws.store.staff.state(["anna"])["anna"]
    assert state.is_off(NOW) and not state.is_off(NOW + timedelta(days=1))
    body = call("GET", "/panel/rules", query="try=1&service=manicure&branch=center", cookie=marina)["body"]
    assert "→ <b>Катя</b>" in body  # the rules now pass Anna over
    assert call("POST", "/panel/staff/anna/on", form={"csrf": token}, cookie=marina)["statusCode"] == 303
    assert not panel_aws.store.staff.state(["anna"])["anna"].is_off(NOW)
    pavel = login(panel_aws, "pavel")  # another branch's manager
    token = csrf_of(call("GET", "/panel/staff", cookie=pavel))
    assert call("POST", "/panel/staff/anna/off", form={"csrf": token}, cookie=pavel)["statusCode"] == 403


# --------------------------------------------------------------------------- editing the rules


def _rules_form(aws, cookie: str) -> tuple[str, str]:
    page = call("GET", "/panel/logout", cookie=cookie)  # every member has this form
    return csrf_of(page), aws.store.config.yaml_text()


def test_a_bad_draft_is_refused_with_the_line_and_the_reason_in_russian(panel_aws):
    cookie = login(panel_aws, "vera")
    token, text = _rules_form(panel_aws, cookie)
    before = panel_aws.store.config.versions()
    draft = text.replace("{id: olga, name: Ольга, role: specialist, skills: [hair], branch: center, capacity: 15}",
                         "{id: olga, name: Ольга, role: specialist, skills: [hair], branch: center, capacity: много}")  # fmt: skip
    assert draft != text
    answer = call(
        "POST", "/panel/rules", form={"csrf": token, "yaml": draft, "action": "save"}, cookie=cookie
    )
    assert answer["statusCode"] == 400
    errors = re.search(r'id="config-errors">(.*?)</div>\s*<form', answer["body"], re.S).group(1)
    line = next(i for i, row in enumerate(draft.splitlines(), 1) if "capacity: много" in row)
    assert f"capacity (строка {line})" in errors and "нужно целое число" in errors
    assert "много" in answer["body"]  # the draft is kept in the form, not lost
    assert panel_aws.store.config.versions() == before


def test_what_if_replays_the_last_days_under_the_draft_then_save_and_restore(panel_aws):
    for i in range(4):  # manicure leads, one an hour: round-robin gives Anna, Katya, Anna, Katya
        at = NOW - timedelta(hours=4 - i)
        stored(panel_aws, f"M{i}", owner="anna", status="assigned", service="manicure", branch="center",
               received_at=at, last_message_at=at)  # fmt: skip
    cookie = login(panel_aws, "vera")
    token, text = _rules_form(panel_aws, cookie)
    draft = text.replace("{id: katya, name: Катя, role: specialist, skills: [nails, face, body], branch: center, capacity: 15}",
                         "{id: katya, name: Катя, role: specialist, skills: [nails, face, body], branch: center, capacity: 15, active: false}")  # fmt: skip
    body = call(
        "POST",
        "/panel/rules",
        cookie=cookie,
        form={"csrf": token, "yaml": draft, "action": "whatif", "days": "7"},
    )["body"]
    assert re.search(r'id="replay-changed">2<', body)
    assert re.search(r"<td>Катя</td><td>2</td><td><b>0</b></td>", body)
    assert re.search(r"<td>Анна</td><td>2</td><td><b>4</b></td>", body)
    assert re.search(r'Нарушили бы SLA: 0 → <b id="replay-breach">0<', body)  # Anna is on shift for all four
    assert wiring.business().staff_member("katya").active  # nothing saved by a what-if

    saved = call("POST", "/panel/rules", cookie=cookie, form={"csrf": token, "yaml": draft, "action": "save"})
    assert saved["statusCode"] == 303
    wiring.reset()
    assert not wiring.business().staff_member("katya").active
    (latest, earlier, *_) = panel_aws.store.config.versions()
    assert latest["who"] == "panel:vera" and latest["changed"] == ["staff"]
    page = call("GET", "/panel/rules", cookie=cookie)["body"]
    assert f'href="/panel/rules/v/{latest["version"]}"' in page
    restored = call(
        "POST", f"/panel/rules/v/{earlier['version']}/restore", form={"csrf": token}, cookie=cookie
    )
    assert restored["statusCode"] == 303
    wiring.reset()
    assert wiring.business().staff_member("katya").active


def test_a_draft_from_a_browser_is_stored_with_its_own_line_ends(panel_aws):
    """A browser sends a textarea's lines ended by CRLF: the stored YAML has the owner's lines."""
    cookie = login(panel_aws, "vera")
    token, text = _rules_form(panel_aws, cookie)
    draft = text.replace("capacity: 15}", "capacity: 14}", 1)
    assert draft != text
    saved = call("POST", "/panel/rules", cookie=cookie,
                 form={"csrf": token, "yaml": draft.replace("\n", "\r\n"), "action": "save"})  # fmt: skip
    assert saved["statusCode"] == 303
    assert panel_aws.store.config.yaml_text() == draft


def test_only_the_owner_and_listed_seniors_edit_the_rules(panel_aws):
    elena = login(panel_aws, "elena")
    page = call("GET", "/panel/rules", cookie=elena)
    assert "<textarea" not in page["body"] and 'class="version"' in page["body"]  # sees versions, no editor
    token, text = _rules_form(panel_aws, elena)
    assert (
        call("POST", "/panel/rules", form={"csrf": token, "yaml": text, "action": "save"}, cookie=elena)[
            "statusCode"
        ]
        == 403
    )
    anna = login(panel_aws, "anna")
    assert call("GET", "/panel/rules/v/1", cookie=anna)["statusCode"] == 403
    panel_aws.push_config(CONFIG + "panel: {rule_editors: [elena]}\n")
    wiring.reset()
    assert "<textarea" in call("GET", "/panel/rules", cookie=elena)["body"]


def test_panel_from_the_bot_through_ingest_and_route_only_for_a_staff_chat(panel_aws, monkeypatch):
    import json

    from leadflow_local.stack import sqs_event

    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret")
    wiring.reset()
    panel_aws.store.staff.connect_chat("elena", "500")

    def send(chat: int, update_id: int) -> None:
        update = {"update_id": update_id, "message": {
            "message_id": update_id, "date": int(clock.now().timestamp()), "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "Кто-то"}, "text": "/panel",
            "entities": [{"offset": 0, "length": 6, "type": "bot_command"}]}}  # fmt: skip
        headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret", "content-type": "application/json"}
        event = api_gateway_event(
            "POST", "/webhooks/telegram", "", headers, json.dumps(update).encode(), "1.2.3.4"
        )
        assert invoke("ingest", event)["statusCode"] == 200

    send(500, 1)  # the senior's own chat
    send(777, 2)  # a client typing the same command
    routed = panel_aws.receive("RouteQueue")
    assert invoke("route", sqs_event(routed, "RouteQueue")) == {"batchItemFailures": []}
    links = [i for i in panel_aws.store.conversation.table.scan()["Items"] if i.get("kind") == "panel_link"]
    assert [i["to"] for i in links] == ["500"]
    assert not [m for m in panel_aws.receive("ScoreQueue") if "panel/login" in m["Body"]]


def test_the_name_search_uses_the_start_of_a_name_in_any_case_and_any_period(panel_aws):
    stored(panel_aws, "N1", owner="anna", contact={"name": "Ёлкина Анна"})
    stored(panel_aws, "N2", owner="anna", contact={"name": "Елена"},
           received_at=NOW - timedelta(days=200), last_message_at=NOW - timedelta(days=200))  # fmt: skip
    stored(panel_aws, "N3", owner="anna", contact={"name": "Анна Ёлкина"})
    cookie = login(panel_aws, "vera")
    assert _lead_ids(call("GET", "/panel/leads", query=urlencode({"q": "ЕЛ"}), cookie=cookie)) == {"N1", "N2"}
    assert _lead_ids(call("GET", "/panel/leads", query=urlencode({"q": "ёлкина а"}), cookie=cookie)) == {"N1"}
    assert panel_aws.store.leads.named("") == []


def test_the_panel_speaks_yandex_api_gateways_payload_1_0(panel_aws):
    from leadflow_local.stack import yandex_gateway_event

    headers = {"Host": HOST, "Content-Type": "application/x-www-form-urlencoded"}
    token = panel_aws.store.panel.issue_login("vera", clock.wall_now() + timedelta(minutes=10))
    page = invoke("panel", yandex_gateway_event("GET", "/panel/login", f"t={token}", headers, b"", "1.2.3.4"))
    assert page["statusCode"] == 200 and "Войти" in page["body"]
    answer = invoke(
        "panel", yandex_gateway_event("POST", "/panel/login", "", headers, f"t={token}".encode(), "1.2.3.4")
    )
    assert answer["statusCode"] == 303 and "cookies" not in answer
    (cookie,) = answer["multiValueHeaders"]["Set-Cookie"]
    summary = invoke("panel", yandex_gateway_event("GET", "/panel/summary", "", {**headers, "Cookie": cookie.split(";")[0]},
                                                   b"", "1.2.3.4"))  # fmt: skip
    assert summary["statusCode"] == 200 and "Сводка" in summary["body"]
