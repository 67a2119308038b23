"""Realistic, correctly signed webhook deliveries for each channel, as the platforms send them.

Used by `leadflow demo`, the end-to-end tests and the benchmark to drive a running stack
through its gateway, exactly like Telegram, Meta, VK, a form builder or a PBX would.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

import requests

_ids = itertools.count(1)
VK_COMMUNITY = 218000000  # the VK community vk_message writes to


@dataclass(frozen=True)
class Delivery:
    channel: str
    body: bytes
    headers: dict[str, str]
    query: str = ""


def _bot_card(chat_id: int, message_id: int, at: datetime, text: str = "Лид") -> dict:
    """A lead card the bot sent: what staff press buttons on and reply to (Telegram quotes its text)."""
    return {
        "message_id": message_id,
        "from": {"id": 1, "is_bot": True, "first_name": "leadflow"},
        "chat": {"id": chat_id, "type": "private"},
        "date": int(at.timestamp()),
        "text": text,
    }


class Webhooks:
    def __init__(self, base_url: str, secrets: dict[str, str], session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.secrets = secrets
        self.session = session or requests.Session()

    def post(self, delivery: Delivery) -> requests.Response:
        url = f"{self.base_url}/webhooks/{delivery.channel}" + (
            f"?{delivery.query}" if delivery.query else ""
        )
        return self.session.post(url, data=delivery.body, headers=delivery.headers, timeout=30)

    # ------------------------------------------------------------------ channels
    def telegram_text(
        self, user_id: int, first_name: str, text: str, at: datetime, update_id: int | None = None
    ) -> Delivery:
        return self._telegram_message(user_id, first_name, text, at, update_id=update_id)

    def telegram_callback(self, staff_chat: int, data: str, card_message_id: int, at: datetime) -> Delivery:
        update_id = 900_000 + next(_ids)
        update = {
            "update_id": update_id,
            "callback_query": {
                "id": str(4_000_000 + update_id),
                "from": {"id": staff_chat, "is_bot": False, "first_name": "Staff"},
                "chat_instance": "-1",
                "data": data,
                "message": _bot_card(staff_chat, card_message_id, at),
            },
        }
        return self._telegram(update)

    def telegram_reply_to_card(
        self, staff_chat: int, card_message_id: int, text: str, at: datetime, card_text: str = "Лид"
    ) -> Delivery:
        """``card_text``: the card as Telegram quotes it (its first line names the lead)."""
        return self._telegram_message(
            staff_chat,
            "Staff",
            text,
            at,
            reply_to_message=_bot_card(staff_chat, card_message_id, at, card_text),
        )

    def telegram_contact(
        self, user_id: int, first_name: str, phone: str, *, own: bool, at: datetime
    ) -> Delivery:
        """A shared contact: ``own`` — the sender's own (Telegram's «поделиться номером»), else somebody's."""
        contact = {
            "phone_number": phone.lstrip("+"),
            "first_name": first_name,
            "user_id": user_id if own else user_id + 1,
        }
        update_id = 900_000 + next(_ids)
        message = {
            "message_id": update_id % 100_000,
            "from": {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "ru"},
            "chat": {"id": user_id, "first_name": first_name, "type": "private"},
            "date": int(at.timestamp()),
            "contact": contact,
        }
        return self._telegram({"update_id": update_id, "message": message})

    def telegram_photo(
        self,
        user_id: int,
        first_name: str,
        caption: str,
        file_id: str,
        at: datetime,
        *,
        file_size: int = 88241,
    ) -> Delivery:
        """A photo with a caption: Telegram sends its sizes, the original last."""
        sizes = [
            {
                "file_id": f"{file_id}-s",
                "file_unique_id": "AQADs",
                "file_size": 1412,
                "width": 90,
                "height": 90,
            },
            {
                "file_id": file_id,
                "file_unique_id": "AQADo",
                "file_size": file_size,
                "width": 1080,
                "height": 1080,
            },
        ]
        return self._telegram_file(user_id, first_name, at, photo=sizes, caption=caption)

    def telegram_voice(
        self,
        user_id: int,
        first_name: str,
        file_id: str,
        at: datetime,
        *,
        duration_s: int = 7,
        file_size: int = 41233,
    ) -> Delivery:
        voice = {"duration": duration_s, "mime_type": "audio/ogg", "file_id": file_id,
                 "file_unique_id": "AgADv", "file_size": file_size}  # fmt: skip
        return self._telegram_file(user_id, first_name, at, voice=voice)

    def _telegram_file(self, user_id: int, first_name: str, at: datetime, **content: object) -> Delivery:
        update_id = 900_000 + next(_ids)
        message = {
            "message_id": update_id % 100_000,
            "from": {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "ru"},
            "chat": {"id": user_id, "first_name": first_name, "type": "private"},
            "date": int(at.timestamp()),
            **content,
        }
        return self._telegram({"update_id": update_id, "message": message})

    def telegram_command(self, chat_id: int, text: str, at: datetime) -> Delivery:
        command = text.split()[0]
        entities = [{"offset": 0, "length": len(command), "type": "bot_command"}]
        return self._telegram_message(chat_id, "Staff", text, at, entities=entities)

    def _telegram_message(
        self,
        user_id: int,
        first_name: str,
        text: str,
        at: datetime,
        update_id: int | None = None,
        **extra: object,
    ) -> Delivery:
        """A text message in a private chat, as the Bot API delivers it."""
        update_id = update_id or 900_000 + next(_ids)
        message = {
            "message_id": update_id % 100_000,
            "from": {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "ru"},
            "chat": {"id": user_id, "first_name": first_name, "type": "private"},
            "date": int(at.timestamp()),
            "text": text,
            **extra,
        }
        return self._telegram({"update_id": update_id, "message": message})

    def _telegram(self, update: dict) -> Delivery:
        return Delivery(
            "telegram",
            json.dumps(update, ensure_ascii=False).encode(),
            {
                "Content-Type": "application/json",
                "X-Telegram-Bot-Api-Secret-Token": self.secrets["TELEGRAM_WEBHOOK_SECRET"],
            },
        )

    def whatsapp_text(self, phone: str, name: str, text: str, at: datetime) -> Delivery:
        return self._whatsapp(phone, name, at, {"type": "text", "text": {"body": text}})

    def whatsapp_media(
        self, phone: str, name: str, kind: str, media_id: str, mime_type: str, at: datetime,
        *, caption: str | None = None, voice: bool = False,
    ) -> Delivery:  # fmt: skip
        """An image, video, document, sticker or audio (``voice``: a voice note) by its media id."""
        media: dict[str, object] = {"mime_type": mime_type, "sha256": "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=",
                                    "id": media_id}  # fmt: skip
        if caption:
            media["caption"] = caption
        if kind == "audio":
            media["voice"] = voice
        return self._whatsapp(phone, name, at, {"type": kind, kind: media})

    def whatsapp_unsupported(self, phone: str, name: str, at: datetime) -> Delivery:
        """A message type the Cloud API does not pass on to businesses (a poll, a view-once photo…)."""
        errors = [{"code": 131051, "title": "Unsupported message type",
                   "details": "Message type is not currently supported"}]  # fmt: skip
        return self._whatsapp(phone, name, at, {"type": "unsupported", "errors": errors})

    def _whatsapp(self, phone: str, name: str, at: datetime, content: dict) -> Delivery:
        wa_id = phone.lstrip("+")
        body = {
            "object": "whatsapp_business_account",
            "entry": [{
                "id": "102290129340398",
                "changes": [{
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "73912000000", "phone_number_id": "106540352242922"},
                        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                        "messages": [{
                            "from": wa_id,
                            "id": f"wamid.HBgL{next(_ids):012d}",
                            "timestamp": str(int(at.timestamp())),
                            **content,
                        }],
                    },
                }],
            }],
        }  # fmt: skip
        return self._meta("whatsapp", body)

    def instagram_text(
        self, sender_id: str, text: str, at: datetime, *, attachments: list[dict] | None = None
    ) -> Delivery:
        """``attachments``: ``[{"type": "image", "payload": {"url": …}}]`` as Instagram sends them."""
        body = {
            "object": "instagram",
            "entry": [{
                "id": "17841400000000000",
                "time": int(at.timestamp() * 1000),
                "messaging": [{
                    "sender": {"id": sender_id},
                    "recipient": {"id": "17841400000000000"},
                    "timestamp": int(at.timestamp() * 1000),
                    "message": {"mid": f"aWdfZAG1faXRlbToxOkl{next(_ids):010d}", "text": text,
                                **({"attachments": attachments} if attachments else {})},
                }],
            }],
        }  # fmt: skip
        return self._meta("instagram", body)

    def _meta(self, channel: str, body: dict) -> Delivery:
        raw = json.dumps(body, ensure_ascii=False).encode()
        signature = hmac.new(self.secrets["META_APP_SECRET"].encode(), raw, hashlib.sha256).hexdigest()
        return Delivery(
            channel, raw, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}
        )

    def vk_message(
        self, user_id: int, text: str, at: datetime, *, attachments: list[dict] | None = None
    ) -> Delivery:
        """``attachments``: ``[{"type": "audio_message", "audio_message": {…}}]`` as VK sends them."""
        event_id = hashlib.sha1(f"{user_id}{text}{at.isoformat()}".encode()).hexdigest()  # noqa: S324 - an id, not security
        body = {
            "group_id": VK_COMMUNITY,
            "type": "message_new",
            "event_id": event_id,
            "v": "5.199",
            "secret": self.secrets["VK_SECRET"],
            "object": {
                "message": {
                    "date": int(at.timestamp()), "from_id": user_id, "id": next(_ids), "out": 0, "peer_id": user_id,
                    "text": text, "conversation_message_id": 1, "attachments": attachments or [], "important": False,
                    "is_hidden": False, "fwd_messages": [], "random_id": 0,
                },
                "client_info": {"button_actions": ["text"], "keyboard": True, "inline_keyboard": True, "lang_id": 0},
            },
        }  # fmt: skip
        return Delivery(
            "vk", json.dumps(body, ensure_ascii=False).encode(), {"Content-Type": "application/json"}
        )

    def tilda_form(self, fields: dict[str, str]) -> Delivery:
        body = urlencode({**fields, "tranid": f"8451{next(_ids):07d}:1", "formid": "form512345678"}).encode()
        return Delivery(
            "form",
            body,
            {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Tilda.cc forms"},
            query=urlencode({"secret": self.secrets["FORM_SECRET"]}),
        )

    def manychat_form(
        self,
        subscriber_id: str,
        name: str,
        text: str,
        *,
        phone: str | None = None,
        messenger: str | None = None,
    ) -> Delivery:
        """ManyChat's External Request with the subscriber's full contact data (no submission id);
        ``messenger``: instagram, whatsapp or telegram (None: Facebook Messenger)."""
        body: dict[str, object] = {
            "id": subscriber_id, "page_id": "987654321", "status": "active", "name": name, "first_name": name,
            "live_chat_url": f"https://manychat.com/fb987654321/chat/{subscriber_id}", "last_input_text": text,
            "phone": phone, "optin_phone": False, "email": None, "optin_email": False,
            "ig_id": 1789654321 if messenger == "instagram" else None,
            "ig_username": "client.ig" if messenger == "instagram" else None,
            "whatsapp_phone": (phone or "+79990000000") if messenger == "whatsapp" else None,
            "last_interaction": None, "custom_fields": {},
        }  # fmt: skip
        if messenger == "telegram":
            body["telegram_id"] = 5550001
        return Delivery(
            "form",
            json.dumps(body, ensure_ascii=False).encode(),
            {
                "Content-Type": "application/json",
                "User-Agent": "ManyChat",
                "X-Form-Secret": self.secrets["FORM_SECRET"],
            },
        )

    def chatfuel_form(
        self, user_id: str, first_name: str, text: str, *, phone: str | None = None
    ) -> Delivery:
        """Chatfuel's JSON API plugin: the user's attributes, its secret in the query."""
        body: dict[str, str] = {"messenger user id": user_id, "chatfuel user id": f"5f{user_id}", "first name": first_name,
                "last user freeform input": text, "last visited block name": "Запись"}  # fmt: skip
        if phone:
            body["phone number"] = phone
        return Delivery(
            "form",
            json.dumps(body, ensure_ascii=False).encode(),
            {"Content-Type": "application/json", "User-Agent": "Chatfuel"},
            query=urlencode({"secret": self.secrets["FORM_SECRET"]}),
        )

    def missed_call(self, caller: str, called: str, at: datetime) -> Delivery:
        body = {
            "event": "missed", "call_id": f"c-{next(_ids):08d}", "caller": caller, "called": called,
            "direction": "in", "started_at": at.isoformat(), "duration_s": 0,
        }  # fmt: skip
        return Delivery(
            "call",
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "X-Call-Secret": self.secrets["CALL_SECRET"]},
        )

    def smsc_inbound(self, phone: str, text: str, at: datetime) -> Delivery:
        """An inbound SMS as SMSC.ru posts it to the callback URL (the webhook's secret in the
        query); the stack takes it when its SMS_PROVIDER is smsc."""
        body = urlencode({"id": f"{next(_ids):09d}", "phone": phone.lstrip("+"), "mes": text,
                          "sent": str(int(at.timestamp())), "to": "79000000000"}).encode()  # fmt: skip
        return Delivery(
            "sms",
            body,
            {"Content-Type": "application/x-www-form-urlencoded"},
            query=urlencode({"secret": self.secrets["SMS_WEBHOOK_SECRET"]}),
        )
