"""The reply to a voice message nobody could transcribe: the client is asked kindly to write, in
the language of the conversation — and whatever else the reply must say still comes with it."""

from __future__ import annotations

from datetime import date

from leadflow.domain.replies import build_reply
from tests.support.builders import business, lead

CFG = business("""
    timezone: Asia/Krasnoyarsk
    services:
      - {id: manicure, name: Маникюр, price: 1200, duration_min: 60, keywords: [маникюр]}
""")
TODAY = date(2026, 3, 16)


def test_an_unheard_voice_asks_the_client_to_write_in_russian():
    reply = build_reply(
        lead(media=["voice"], contact={"name": "Ирина"}), CFG, first=True, today=TODAY, is_open_now=True,
        unheard_voice=True,
    )  # fmt: skip
    assert reply.text == (
        "Здравствуйте, Ирина! Спасибо за голосовое — мы передали его администратору. Если удобно, "
        "напишите, пожалуйста, коротко текстом, что вас интересует: так мы ответим быстрее."
    )
    assert not reply.unanswered


def test_an_unheard_voice_in_an_english_conversation_is_asked_for_in_english_after_hours():
    reply = build_reply(
        lead(media=["voice"], language="en"), CFG, first=False, today=TODAY, is_open_now=False,
        unheard_voice=True,
    )  # fmt: skip
    assert reply.text == (
        "Thank you for the voice message — we have passed it to the administrator. If you can, please "
        "write briefly what you are interested in: that way we answer faster. We are closed now; an "
        "administrator will call you back in the morning."
    )


def test_a_heard_voice_is_answered_like_the_words_it_held():
    heard = lead(
        media=["voice"], service="manicure", preferred_date=date(2026, 3, 17), preferred_time="15:00"
    )
    reply = build_reply(
        heard, CFG, first=False, today=TODAY, is_open_now=True, text="Хочу на маникюр завтра в 15:00"
    )
    assert reply.text and "маникюр" in reply.text.lower() and "голосов" not in reply.text.lower()
