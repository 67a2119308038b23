"""Item 22: the Telegram bot token never appears in a log line, not even urllib3's DEBUG request line."""

from __future__ import annotations

import logging

from leadflow.adapters.channels.telegram import TelegramBot, TelegramSender
from leadflow.domain.models import OutboundMessage
from tests.fakes.telegram_server import FakeTelegram


def test_item_22_the_bot_token_is_not_in_any_log_line(caplog):
    with FakeTelegram() as tg:
        caplog.set_level(logging.DEBUG)
        sender = TelegramSender(TelegramBot(tg.token, base_url=tg.url))
        sender.send(
            OutboundMessage(id="m1", channel="telegram", to="5001", kind="reply", text="Здравствуйте!")
        )
    lines = [record.getMessage() for record in caplog.records]
    assert any("sendMessage" in line for line in lines), "urllib3 should have logged the request line"
    assert not any(tg.token in line for line in lines)
