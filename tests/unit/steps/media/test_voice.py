"""Voice messages: transcribed within the score batch's time and qualified like text («🎤 …» on the
card), or — without a transcriber, or when it fails — the client is asked kindly to write and the
owner gets the voice."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from leadflow import clock, wiring
from leadflow.adapters.media import Blob
from leadflow.adapters.transcribe import Transcriber, TranscriptionFailed
from leadflow.steps.media import TRANSCRIBE_MIN_S, NoTimeLeft
from tests.fakes.openai_server import FakeOpenAI, quota_exceeded, rate_limited, too_large, transcription
from tests.support.workspace import ANNA, CLIENT, KATYA, MARINA, Workspace

VOICE = b"OggS\x00\x02" + b"opus-voice" * 200
CHATS = {"anna": ANNA, "katya": KATYA, "marina": MARINA}
UNHEARD = "Спасибо за голосовое — мы передали его администратору"


def _transcribing(media, monkeypatch, key: str = "sk-test") -> None:
    monkeypatch.setenv("TRANSCRIBE_API_KEY", key)
    monkeypatch.setenv("TRANSCRIBE_BASE_URL", media.ai_url)
    wiring.reset()


def _voice(ws: Workspace, tg, file_id: str = "AwACvoice1") -> dict:
    tg.add_file(file_id, VOICE, f"voice/{file_id}.oga")
    delivery = ws.hooks.telegram_voice(CLIENT, "Ирина", file_id, clock.now())
    update = json.loads(delivery.body)
    tg.client_message(CLIENT, update["message"]["message_id"])
    assert ws.post(delivery) == 200
    ws.run()
    return update


def test_a_voice_message_is_transcribed_qualified_and_shown_on_the_card(media, monkeypatch):
    ws, tg = media.ws, media.tg
    _transcribing(media, monkeypatch)

    update = _voice(ws, tg)

    lead = ws.only_lead()
    assert (lead.service, lead.preferred_time) == ("manicure", "15:00")  # understood from the words
    assert lead.recent_texts == ["🎤 Хочу на маникюр завтра в 15:00"]
    (request,) = media.ai.audio
    assert request["model"] == "whisper-1" and "language" not in request  # the model hears it
    assert request["filename"] == "voice.ogg" and request["data"] == VOICE
    assert UNHEARD not in " ".join(tg.texts(CLIENT))
    assert "маникюр" in tg.texts(CLIENT)[-1].lower()
    # Complete, so routed at once: the card shows the words, the voice itself follows it.
    chat = CHATS[lead.owner or ""]
    card = next(m for m in tg.sent[str(chat)] if m["message_id"] == ws.card_id(lead))
    assert "— 🎤 Хочу на маникюр завтра в 15:00" in card["text"]
    (copy,) = tg.media(chat)
    assert copy["copied_from"] == (str(CLIENT), update["message"]["message_id"])
    stored = [m for m in ws.aws.store.conversation.history(lead.lead_id) if m.get("direction") == "in"]
    assert stored[0]["transcribed"] is True and stored[0]["text"] == "Хочу на маникюр завтра в 15:00"


def test_an_english_voice_is_heard_as_english_and_answered_in_english(media, monkeypatch):
    ws, tg = media.ws, media.tg
    media.ai.transcripts = [transcription("Hello! Can I book a haircut tomorrow at 11? My name is Emma")]
    _transcribing(media, monkeypatch)

    _voice(ws, tg)

    lead = ws.only_lead()
    assert lead.language == "en" and lead.intent == "booking" and lead.preferred_time == "11:00"
    assert lead.recent_texts == ["🎤 Hello! Can I book a haircut tomorrow at 11? My name is Emma"]
    answer = tg.texts(CLIENT)[-1]
    assert answer.startswith("Hello, Emma!")  # this salon lists no English words for its services:
    assert "Which service would you like to book?" in answer  # asked, in English
    assert not any("а" <= ch.lower() <= "я" for ch in answer)


def test_the_transcriber_defaults_to_the_llm_endpoint_and_key(media, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", media.ai_url)
    wiring.reset()
    transcriber = wiring.transcriber()
    assert transcriber is not None and transcriber.model == "whisper-1"
    assert transcriber.transcribe(Blob(VOICE, "audio/ogg"), 5) == "Хочу на маникюр завтра в 15:00"


def test_without_a_transcriber_the_client_is_asked_to_write_and_the_owner_gets_the_voice(media):
    ws, tg = media.ws, media.tg

    update = _voice(ws, tg)

    assert UNHEARD in tg.texts(CLIENT)[-1]
    lead = ws.only_lead()
    assert lead.recent_texts == ["[voice]"] and not lead.owner  # nothing to qualify yet: it waits
    clock.advance(timedelta(minutes=11))
    wiring.escalate_step().run(clock.now())
    ws.run()
    lead = ws.only_lead()
    (copy,) = tg.media(CHATS[lead.owner or ""])
    assert copy["copied_from"] == (str(CLIENT), update["message"]["message_id"])
    assert copy["reply_to"] == ws.card_id(lead)
    assert not ws.aws.media_objects(), "a voice nobody transcribes is copied, never downloaded"


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param("wrong-key", id="401 key refused"),
        pytest.param(too_large(26_383_110), id="413 too large"),
        pytest.param(rate_limited(), id="429 rate limited"),
        pytest.param(quota_exceeded(), id="429 quota spent"),
    ],
)
def test_a_failing_transcriber_never_loses_the_message(media, monkeypatch, answer):
    ws, tg = media.ws, media.tg
    if answer == "wrong-key":
        _transcribing(media, monkeypatch, key="sk-wrong")
    else:
        media.ai.reset(transcripts=(answer,))
        _transcribing(media, monkeypatch)

    _voice(ws, tg)  # ws.run() asserts no record failed: the reply does not wait for a retry

    assert UNHEARD in tg.texts(CLIENT)[-1]
    assert ws.only_lead().media == ["voice"]


def test_no_transcription_when_the_batch_has_no_time_for_it(media, monkeypatch):
    ws, tg = media.ws, media.tg
    _transcribing(media, monkeypatch)
    step = wiring.score_step()
    step.time_left_s = lambda: TRANSCRIBE_MIN_S - 1  # the batch is nearly spent
    tg.add_file("AwACvoice9", VOICE, "voice/AwACvoice9.oga")
    delivery = ws.hooks.telegram_voice(CLIENT, "Ирина", "AwACvoice9", clock.now())
    assert ws.post(delivery) == 200
    (record,) = ws.aws.receive("ScoreQueue")
    from leadflow.adapters.queues import parse_queue_message

    step.handle(parse_queue_message(record["Body"]))  # type: ignore[arg-type]
    assert media.ai.audio == []
    assert UNHEARD in tg.texts(CLIENT)[-1]


def test_a_file_that_must_be_kept_waits_for_a_batch_with_time_for_it(media):
    """Nothing of the message is written: the queue brings it back whole to the next batch."""
    ws, graph = media.ws, media.graph
    graph.add_media("55001", VOICE, "audio/ogg")
    step = wiring.score_step()
    step.time_left_s = lambda: 3.0
    delivery = ws.hooks.whatsapp_media(
        "+79991234508", "Лена", "audio", "55001", "audio/ogg", clock.now(), voice=True
    )
    assert ws.post(delivery) == 200
    (record,) = ws.aws.receive("ScoreQueue")
    from leadflow.adapters.queues import parse_queue_message

    with pytest.raises(NoTimeLeft):
        step.handle(parse_queue_message(record["Body"]))  # type: ignore[arg-type]
    assert ws.aws.store.leads.table.scan()["Items"] == []
    assert graph.sent == [] and ws.aws.media_objects() == {}


def test_a_whatsapp_voice_is_fetched_with_the_token_transcribed_and_uploaded(media, monkeypatch):
    ws, tg, graph = media.ws, media.tg, media.graph
    _transcribing(media, monkeypatch)
    graph.add_media("1603529087043210", VOICE, "audio/ogg; codecs=opus")
    graph.expired_downloads = 1  # the first URL expired: a new one is asked for

    delivery = ws.hooks.whatsapp_media(
        "+79991234502",
        "Игорь",
        "audio",
        "1603529087043210",
        "audio/ogg; codecs=opus",
        clock.now(),
        voice=True,
    )
    body = json.loads(delivery.body)
    assert ws.post(delivery) == 200
    ws.run()

    lead = ws.only_lead()
    assert lead.recent_texts == ["🎤 Хочу на маникюр завтра в 15:00"]
    (voice,) = tg.media(CHATS[lead.owner or ""])
    assert voice["method"] == "sendVoice" and voice["file"] == VOICE
    assert voice["caption"] == "🎤 Голосовое · Игорь: «Хочу на маникюр завтра в 15:00»"
    wamid = body["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert list(ws.aws.media_objects()) == [f"media/{lead.lead_id}/whatsapp:{wamid}/0.ogg"]


# --------------------------------------------------------------------------- the adapter on the wire


@pytest.mark.parametrize(
    ("answer", "retryable", "words"),
    [
        (too_large(26_383_110), False, "413"),
        (rate_limited(), True, "rate limited"),
        (quota_exceeded(), False, "quota"),
    ],
)
def test_transcription_errors_say_whether_trying_again_may_help(answer, retryable, words):
    fake = FakeOpenAI(transcripts=(answer,))
    with fake.serve() as server:
        transcriber = Transcriber("sk-test", f"{server.url}/v1")
        with pytest.raises(TranscriptionFailed) as failed:
            transcriber.transcribe(Blob(VOICE, "audio/ogg"), 5)
    assert failed.value.retryable is retryable and words in failed.value.reason


def test_a_refused_key_is_not_retried_and_its_reason_holds_no_key():
    fake = FakeOpenAI(transcripts=(transcription("x"),))
    with fake.serve() as server, pytest.raises(TranscriptionFailed) as failed:
        Transcriber("sk-wrong-secret", f"{server.url}/v1").transcribe(Blob(VOICE, "audio/ogg"), 5)
    assert not failed.value.retryable and "401" in failed.value.reason
    assert "sk-wrong" not in failed.value.reason


@pytest.mark.parametrize(
    ("mime", "name"), [("audio/ogg", "voice.ogg"), ("audio/mpeg", "voice.mp3"), ("audio/mp4", "voice.m4a")]
)
def test_the_file_is_named_so_the_endpoint_knows_its_format(mime, name):
    fake = FakeOpenAI(transcripts=(transcription("Да"),))
    with fake.serve() as server:
        assert (
            Transcriber("sk-test", f"{server.url}/v1", "gpt-4o-mini-transcribe").transcribe(
                Blob(VOICE, mime), 5
            )
            == "Да"
        )
    (request,) = fake.audio
    assert request["filename"] == name and request["model"] == "gpt-4o-mini-transcribe"
    assert request["response_format"] == "json"
