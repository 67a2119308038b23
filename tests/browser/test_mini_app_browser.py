"""The panel opened as a Telegram Mini App in a real headless Chromium: the entry page's own script
reads the launch data Telegram puts in the fragment (#tgWebAppData=…), posts it back, and the staff
member lands in the panel. The browser's requests go to the real panel handler in this process
(Playwright's request routing), on the in-process AWS; the launch data is signed as Telegram signs it."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest

from leadflow import clock, wiring

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]
TOKEN = "123456:TEST-bot-token"
ORIGIN = "http://127.0.0.1:8765"  # never listened on: every request is answered by the route below


def signed_launch_data(user_id: int) -> str:
    fields = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps({"id": user_id, "first_name": "Анна"}, ensure_ascii=False),
        "auth_date": str(int((clock.wall_now() - timedelta(seconds=5)).timestamp())),
    }
    check = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    key = hmac.new(b"WebAppData", TOKEN.encode(), hashlib.sha256).digest()
    return urlencode({**fields, "hash": hmac.new(key, check.encode(), hashlib.sha256).hexdigest()})


def _to_panel(route, request) -> None:
    from leadflow_local.functions import invoke
    from leadflow_local.stack import api_gateway_event

    url = urlsplit(request.url)
    headers = {k.lower(): v for k, v in request.headers.items()} | {"host": url.netloc}
    event = api_gateway_event(request.method, url.path, url.query, headers, request.post_data_buffer or b"",
                              "127.0.0.1")  # fmt: skip
    answer = invoke("panel", event)
    extra = {"set-cookie": "\n".join(answer["cookies"])} if answer.get("cookies") else {}
    route.fulfill(status=answer["statusCode"], headers={**answer["headers"], **extra}, body=answer["body"])


@pytest.mark.parametrize("chat, lands_on", [(5551, "/panel/summary"), (7777, "/panel/tg")])
def test_the_mini_app_page_signs_the_member_in_from_telegrams_launch_data(aws, monkeypatch, tmp_path, chat,
                                                                           lands_on):  # fmt: skip
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("PUBLIC_BASE_URL", ORIGIN)
    wiring.reset()
    aws.store.staff.connect_chat("anna", "5551")  # Anna joined the bot by her invite; 7777 is nobody
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 360, "height": 740}, locale="ru-RU")
        page.route(f"{ORIGIN}/**", _to_panel)
        page.goto(
            f"{ORIGIN}/panel/tg#tgWebAppData={quote(signed_launch_data(chat), safe='')}&tgWebAppVersion=7.0"
        )
        page.wait_for_url(re.compile(re.escape(lands_on) + "$"))
        page.screenshot(path=str(tmp_path / f"mini-app-{chat}.png"), full_page=True)
        if chat == 5551:
            assert "Анна · специалист" in page.inner_text("header")
        else:
            assert "не подключён" in page.inner_text("main")
            # Opened outside Telegram (no launch data), the page says how to get in instead.
            page.goto(f"{ORIGIN}/panel/tg")
            assert page.locator("#tg-missing").is_visible()
        browser.close()
