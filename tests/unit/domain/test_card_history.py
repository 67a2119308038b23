"""The card's «Последние сообщения» say what the client sent in words, whatever it was."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from leadflow.business import load_business_config
from leadflow.domain.cards import card_text
from leadflow.domain.models import ContactRecord
from tests.support.builders import lead

SALON = load_business_config(Path(__file__).parents[2] / "support" / "salon.yaml")


def _recent(history: list[dict], channel: str = "telegram") -> list[str]:
    text = card_text(
        SALON, lead(channel=channel), ContactRecord(contact_id="C-L1"), history, date(2026, 3, 16)
    )
    lines = text.splitlines()
    start = lines.index("Последние сообщения:") + 1
    return [line for line in lines[start:] if line.startswith("— ")]


def test_a_missed_call_reads_as_a_missed_call_not_as_brackets():
    assert _recent([{"direction": "in", "channel": "call", "text": "", "media": []}], "call") == [
        "— 📞 Пропущенный звонок"
    ]


def test_media_without_a_caption_is_named_in_russian():
    assert _recent([{"direction": "in", "text": "", "media": ["photo", "voice"]}]) == ["— [фото, голосовое]"]


def test_an_inbound_message_with_nothing_in_it_is_left_out():
    assert "Последние сообщения:" not in card_text(
        SALON, lead(), ContactRecord(contact_id="C-L1"), [{"direction": "in", "text": "", "media": []}],
        date(2026, 3, 16),
    )  # fmt: skip
