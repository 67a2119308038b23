"""The panel as a Telegram Mini App, through the real panel handler: Telegram's signed initData
(signed here as Telegram's «Validating data received via the Mini App» describes) opens a session
for the staff member whose chat it is; forged, stale, replayed or foreign data opens nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from leadflow import clock, wiring
from tests.unit.steps.panel.test_panel import call, csrf_of, login

TOKEN = "123456:TEST-bot-token"


def init_data(user_id: int, *, token: str = TOKEN, age: timedelta = timedelta(seconds=30), **extra) -> str:
    fields = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps({"id": user_id, "first_name": "Анна", "language_code": "ru"}, ensure_ascii=False),
        "auth_date": str(int((clock.wall_now() - age).timestamp())),
        **extra,
    }
    check = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    key = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    return urlencode({**fields, "hash": hmac.new(key, check.encode(), hashlib.sha256).hexdigest()})


@pytest.fixture
def mini_app(panel_aws, monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    wiring.reset()
    panel_aws.store.staff.connect_chat("anna", "5551")  # Anna joined the bot by her invite
    return panel_aws


def test_the_entry_page_runs_only_our_own_script(mini_app):
    page = call("GET", "/panel/tg")
    assert page["statusCode"] == 200 and '<script src="/panel/static/tg.js"></script>' in page["body"]
    assert "script-src 'self'" in page["headers"]["Content-Security-Policy"]
    assert "script-src" not in call("GET", "/panel/login")["headers"]["Content-Security-Policy"]
    script = call("GET", "/panel/static/tg.js")
    assert script["statusCode"] == 200 and "tgWebAppData" in script["body"]


def test_signed_init_data_opens_a_session_for_the_member_whose_chat_it_is_once(mini_app):
    data = init_data(5551)
    answer = call("POST", "/panel/tg", form={"init_data": data})
    assert answer["statusCode"] == 303 and answer["headers"]["Location"] == "/panel/summary"
    cookie = answer["cookies"][0].split(";")[0]
    page = call("GET", "/panel/leads", cookie=cookie)
    assert page["statusCode"] == 200 and "Анна · специалист" in page["body"]
    assert call("GET", "/panel/staff", cookie=cookie)["statusCode"] == 403  # a specialist, as by a link
    assert call("GET", "/panel/tg", cookie=cookie)["statusCode"] == 303  # opened again: still in
    replay = call("POST", "/panel/tg", form={"init_data": data})
    assert replay["statusCode"] == 403 and "cookies" not in replay


@pytest.mark.parametrize(
    "forged",
    [
        lambda: init_data(5551, token="999:another-bot"),  # signed by another bot
        lambda: init_data(5551).replace("5551", "5552"),  # the user changed after signing
        lambda: init_data(5551, age=timedelta(hours=2)),  # stale
        lambda: init_data(5551) + "&hash=00",  # two hashes
        lambda: "user=%7B%22id%22%3A5551%7D&auth_date=1",  # no hash at all
        lambda: "%%%",
    ],
)
def test_forged_stale_or_malformed_data_opens_nothing(mini_app, forged):
    answer = call("POST", "/panel/tg", form={"init_data": forged()})
    assert answer["statusCode"] == 403 and "cookies" not in answer
    assert "Откройте панель заново" in answer["body"]


def test_a_telegram_user_who_is_not_staff_or_no_longer_works_here_gets_nothing(mini_app):
    stranger = call("POST", "/panel/tg", form={"init_data": init_data(7777)})
    assert stranger["statusCode"] == 403 and "не подключён" in stranger["body"] and "cookies" not in stranger
    owner = login(mini_app, "vera")
    token = csrf_of(call("GET", "/panel/staff", cookie=owner))
    assert (
        call("POST", "/panel/staff/anna/deactivate", form={"csrf": token}, cookie=owner)["statusCode"] == 303
    )
    wiring.reset()
    gone = call("POST", "/panel/tg", form={"init_data": init_data(5551)})
    assert gone["statusCode"] == 403 and "cookies" not in gone


def test_without_the_bot_token_the_mini_app_refuses_everyone(panel_aws, monkeypatch):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    wiring.reset()
    panel_aws.store.staff.connect_chat("anna", "5551")
    assert call("POST", "/panel/tg", form={"init_data": init_data(5551)})["statusCode"] == 403
