"""Clients' files on the wire: what each channel's webhook names (never the bytes), how each
platform gives the file back, and how the Bot API takes it to staff."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from leadflow.adapters.channels import instagram, telegram, vk, whatsapp
from leadflow.adapters.channels.telegram import TelegramBot, TelegramMediaFetcher, TelegramSender
from leadflow.adapters.channels.whatsapp import WhatsAppMediaFetcher
from leadflow.adapters.media import MediaNotStored, MediaTooBig, MediaUnavailable, UrlFetcher, extension
from leadflow.domain.models import Attachment, MediaRef, OutboundMessage
from tests.fakes.http import FakeServer, Request, Response
from tests.fakes.meta_server import FakeGraphApi
from tests.fakes.telegram_server import FakeTelegram

EVENTS = Path(__file__).resolve().parents[4] / "events"
VOICE = b"OggS" + b"\x01" * 500


def _event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- what webhooks name


def test_telegram_names_the_largest_photo_and_the_message_to_copy():
    (message,) = telegram.parse_update(
        telegram.TgUpdate.model_validate(_event("telegram/photo_caption.json"))
    ).messages
    (photo,) = message.attachments
    assert photo.kind == "photo" and photo.file_id.endswith("AAN5AAM2BA") and photo.size == 88241
    assert photo.copy_from == "1987654321:57" and photo.caption == message.text
    (voice,) = telegram.parse_update(telegram.TgUpdate.model_validate(_event("telegram/voice.json"))).messages
    assert voice.attachments == [
        MediaRef(kind="voice", file_id=voice.attachments[0].file_id, mime_type="audio/ogg", size=41233,
                 copy_from="5298761043:212")
    ]  # fmt: skip


def test_a_telegram_business_chat_file_is_fetched_not_copied():
    update = _event("telegram/photo_caption.json")
    business = {"update_id": 1, "business_message": {**update["message"], "business_connection_id": "bc1"}}
    (message,) = telegram.parse_update(telegram.TgUpdate.model_validate(business)).messages
    assert message.attachments[0].copy_from is None


def test_whatsapp_names_the_media_id_with_its_caption():
    (photo,) = whatsapp.parse_notification(_event("whatsapp/image_caption.json")).messages
    assert photo.attachments == [
        MediaRef(kind="photo", file_id="1227439685410567", mime_type="image/jpeg",
                 caption="Хочу такой же дизайн ногтей, сколько будет стоить?")
    ]  # fmt: skip
    (voice,) = whatsapp.parse_notification(_event("whatsapp/voice.json")).messages
    assert voice.attachments[0].kind == "voice" and voice.attachments[0].file_id == "1603529087043210"


def test_instagram_and_vk_name_their_links():
    (ig,) = instagram.parse_notification(_event("instagram/attachment.json")).messages
    assert [(a.kind, a.url[:36]) for a in ig.attachments] == [
        ("photo", "https://lookaside.fbsbx.com/ig_messa")
    ]
    callback = vk.VkCallback.model_validate(_event("vk/message_new_audio_message.json"))
    (voice,) = vk.parse_callback(callback).messages
    assert voice.attachments == [MediaRef(kind="voice", url=voice.attachments[0].url, mime_type="audio/mpeg")]
    assert voice.attachments[0].url.endswith(".mp3")
    (photo,) = vk.parse_callback(
        vk.VkCallback.model_validate(_event("vk/message_new_photo_geo.json"))
    ).messages
    assert photo.media == ["photo", "location"] and [a.kind for a in photo.attachments] == ["photo"]


def test_shared_posts_and_links_are_named_by_their_address():
    """«Хочу как тут» with a shared post: no file to fetch, so staff get the post's link."""
    share = {"type": "share", "payload": {"url": "https://www.instagram.com/p/C4xYz12AbCd/"}}
    reel = {"type": "ig_reel", "payload": {"reel_video_id": "1790", "title": "Нюд на короткие",
                                           "url": "https://www.instagram.com/reel/C5aBcD/"}}  # fmt: skip
    event = _event("instagram/attachment.json")
    event["entry"][0]["messaging"][0]["message"]["attachments"] = [share, reel]
    (ig,) = instagram.parse_notification(event).messages
    assert ig.attachments == [
        MediaRef(kind="share", link="https://www.instagram.com/p/C4xYz12AbCd/"),
        MediaRef(kind="reel", link="https://www.instagram.com/reel/C5aBcD/", caption="Нюд на короткие"),
    ]
    callback = _event("vk/message_new_photo_geo.json")
    callback["object"]["message"]["attachments"] = [
        {"type": "wall", "wall": {"id": 1874, "owner_id": -212345678, "from_id": -212345678, "text": "…"}},
        {"type": "link", "link": {"url": "https://nails.example/design-42", "title": "Дизайн 42"}},
    ]
    (vk_message,) = vk.parse_callback(vk.VkCallback.model_validate(callback)).messages
    assert vk_message.attachments == [
        MediaRef(kind="wall_post", link="https://vk.com/wall-212345678_1874"),
        MediaRef(kind="link", link="https://nails.example/design-42", caption="Дизайн 42"),
    ]


def test_a_queue_message_carries_names_not_bytes():
    (message,) = whatsapp.parse_notification(_event("whatsapp/voice.json")).messages
    assert len(message.model_dump_json()) < 2_000


@pytest.mark.parametrize(
    ("mime", "name", "kind", "ext"),
    [("audio/ogg; codecs=opus", None, "voice", "ogg"), (None, "voice/file_1.oga", "voice", "ogg"),
     ("image/jpeg", None, "photo", "jpg"), (None, "Прайс.PDF", "document", "pdf"), (None, None, "video", "mp4"),
     ("application/x-unknown-thing", None, "document", "bin")],
)  # fmt: skip
def test_a_kept_file_gets_an_extension_that_says_what_it_is(mime, name, kind, ext):
    assert extension(mime, name, kind) == ext


def test_keys_are_one_prefix_per_lead():
    attachment = Attachment(message_id="whatsapp:wamid.HBg/abc==", n=1, kind="photo", ext="jpg")
    assert attachment.key("L1") == "media/L1/whatsapp:wamid.HBg_abc==/1.jpg"


# --------------------------------------------------------------------------- getting files back


def test_telegram_get_file_then_download_with_the_bot_token():
    with FakeTelegram() as tg:
        tg.add_file("AwAC1", VOICE, "voice/file_7.oga")
        blob = TelegramMediaFetcher(TelegramBot(tg.token, base_url=tg.url)).fetch(
            MediaRef(kind="voice", file_id="AwAC1"), 1_000_000
        )
        assert (blob.data, blob.mime_type, blob.file_name) == (VOICE, "audio/ogg", "file_7.oga")
        # Over the bots' 20 MB: refused by size before any call, or by getFile's own answer.
        tg.add_file("BIG", b"x", "videos/big.mp4", size=30 * 1024 * 1024)
        fetcher = TelegramMediaFetcher(TelegramBot(tg.token, base_url=tg.url))
        with pytest.raises(MediaTooBig):
            fetcher.fetch(MediaRef(kind="video", file_id="BIG", size=30 * 1024 * 1024), 50 * 1024 * 1024)
        with pytest.raises(MediaTooBig):
            fetcher.fetch(MediaRef(kind="video", file_id="BIG"), 50 * 1024 * 1024)
        with pytest.raises(MediaUnavailable):
            fetcher.fetch(MediaRef(kind="photo", file_id="nope"), 1_000_000)
        assert all(
            tg.token not in str(r.path) or r.path.startswith(("/bot", "/file/bot")) for r in tg.requests
        )


def test_whatsapp_asks_for_a_fresh_url_when_the_first_one_expired():
    with FakeGraphApi() as graph:
        graph.add_media("555", VOICE, "audio/ogg; codecs=opus")
        graph.expired_downloads = 1
        fetcher = WhatsAppMediaFetcher(graph.token, "106540352242922", base_url=graph.base_url)
        blob = fetcher.fetch(MediaRef(kind="voice", file_id="555"), 1_000_000)
        assert blob.data == VOICE and blob.mime_type == "audio/ogg; codecs=opus"
        gets = [r for r in graph.requests if r.method == "GET"]
        assert [r.path.startswith("/v21.0/") for r in gets] == [True, False, True, False]
        assert all(r.headers["authorization"] == f"Bearer {graph.token}" for r in gets)
        assert gets[0].query == {"phone_number_id": "106540352242922"}
        graph.add_media("556", b"", "video/mp4", size=101 * 1024 * 1024)
        with pytest.raises(MediaTooBig):
            fetcher.fetch(MediaRef(kind="video", file_id="556"), 20 * 1024 * 1024)
        with pytest.raises(MediaUnavailable, match="error 100"):
            fetcher.fetch(MediaRef(kind="photo", file_id="999"), 1_000_000)
        with pytest.raises(MediaUnavailable, match="190"):
            WhatsAppMediaFetcher("wrong", base_url=graph.base_url).fetch(
                MediaRef(kind="photo", file_id="555"), 10**6
            )


def test_a_link_is_read_only_up_to_the_cap():
    big = b"x" * 3_000_000

    def route(request: Request) -> Response:
        return Response(
            200, big if request.path == "/big" else b"small", headers={"Content-Type": "image/jpeg"}
        )

    with FakeServer(route) as server:
        fetcher = UrlFetcher()
        assert fetcher.fetch(MediaRef(kind="photo", url=f"{server.url}/small"), 1_000_000).data == b"small"
        with pytest.raises(MediaTooBig):
            fetcher.fetch(MediaRef(kind="photo", url=f"{server.url}/big"), 1_000_000)
        with pytest.raises(MediaUnavailable):
            fetcher.fetch(MediaRef(kind="photo", url="file:///etc/passwd"), 1_000_000)


def test_a_download_slower_than_the_time_left_is_given_up_not_cut_off():
    """A CDN that answers after 2 s, with 0.5 s left of the batch: the fetch gives up in time
    (the owner gets a note), instead of the runtime killing the batch mid-download."""

    def route(request: Request) -> Response:
        return Response(200, b"photo", headers={"Content-Type": "image/jpeg"}, delay_s=2.0)

    with FakeServer(route) as server:
        started = time.monotonic()
        with pytest.raises(MediaUnavailable):
            UrlFetcher().fetch(MediaRef(kind="photo", url=f"{server.url}/slow"), 1_000_000, within_s=0.5)
        assert time.monotonic() - started < 1.5
        assert (
            UrlFetcher().fetch(MediaRef(kind="photo", url=f"{server.url}/slow"), 1_000_000).data == b"photo"
        )


# --------------------------------------------------------------------------- to staff


def _forward(attachment: Attachment, text: str = "📷 Фото · Ирина: вот") -> OutboundMessage:
    return OutboundMessage(id="media:1", channel="telegram", to="5001", lead_id="L1", kind="client_media",
                           text=text, reply_to_message_id="101", attachment=attachment)  # fmt: skip


def test_the_sender_copies_telegram_files_and_uploads_others_with_a_caption_within_the_limit():
    with FakeTelegram() as tg:
        tg.client_message(70001, 12)
        stored = {"media/L1/m1/0.ogg": VOICE}
        sender = TelegramSender(
            TelegramBot(tg.token, base_url=tg.url), media=lambda lead, a: stored.get(a.key(lead))
        )
        sender.send(_forward(Attachment(message_id="m0", n=0, kind="photo", copy_from="70001:12")))
        voice = Attachment(message_id="m1", n=0, kind="voice", ext="ogg", stored=True)
        sender.send(_forward(voice, "🎤 Голосовое · Ирина: «" + "слово " * 400 + "»"))
        copy, upload = tg.media(5001)
        assert copy["copied_from"] == ("70001", 12) and copy["caption"] is None  # the client's caption kept
        assert (
            upload["method"] == "sendVoice" and upload["file"] == VOICE and upload["file_name"] == "voice.ogg"
        )
        assert len(upload["caption"]) <= 1024
        with pytest.raises(MediaNotStored):
            sender.send(_forward(Attachment(message_id="m2", n=0, kind="photo", ext="jpg", stored=True)))
        # A file that could not be fetched: its note is a plain message under the card.
        sender.send(
            _forward(Attachment(message_id="m3", n=0, kind="video", problem="too_big"), "🎬 Видео: большой")
        )
        assert tg.texts(5001) == ["🎬 Видео: большой"]
