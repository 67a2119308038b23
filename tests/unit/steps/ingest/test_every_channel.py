"""Every sample in events/** through the real ingest handler: the platform's answer, what is
queued, what is kept in InboxTable — and nothing personal in the logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from leadflow import clock
from leadflow.adapters.queues import parse_queue_message
from leadflow.domain.models import CrmEvent, DeliveryReport, InboundMessage, StaffEvent
from tests.support.webhooks import EVENTS, body_of, channel_of, delivery, ingest, sample_files, sample_id

NOW = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)
OK = (200, "ok")
# sample → (status, body, messages on ScoreQueue, event types on RouteQueue)
EXPECTED: dict[str, tuple[int, str, int, list[str]]] = {
    "telegram/business_connection": (*OK, 0, []),
    "telegram/business_message": (*OK, 1, []),
    "telegram/callback_query": (*OK, 0, ["staff"]),
    "telegram/contact": (*OK, 1, []),
    "telegram/edited_message": (*OK, 0, []),
    "telegram/group_message": (*OK, 0, []),
    "telegram/location": (*OK, 1, []),
    "telegram/my_chat_member": (*OK, 0, []),
    # A command or a reply from a chat that is not a staff member's is a client's message (the
    # same updates from a staff chat go to route: test_staff_and_client_chats.py).
    "telegram/off_command": (*OK, 1, []),
    "telegram/photo_caption": (*OK, 1, []),
    "telegram/reply_to_card": (*OK, 1, []),
    "telegram/start_invite": (*OK, 0, ["staff"]),
    "telegram/start_payload": (*OK, 1, []),
    "telegram/text_message": (*OK, 1, []),
    "telegram/voice": (*OK, 1, []),
    "whatsapp/image_caption": (*OK, 1, []),
    "whatsapp/location": (*OK, 1, []),
    "whatsapp/reaction": (*OK, 0, []),
    "whatsapp/referral_ad": (*OK, 1, []),
    "whatsapp/several_messages": (*OK, 3, []),
    "whatsapp/status_update": (*OK, 0, []),
    "whatsapp/text": (*OK, 1, []),
    "whatsapp/username_only": (*OK, 1, []),
    "whatsapp/voice": (*OK, 1, []),
    "instagram/ad_referral": (*OK, 1, []),
    "instagram/attachment": (*OK, 1, []),
    "instagram/echo": (*OK, 0, []),
    "instagram/postback": (*OK, 1, []),
    "instagram/reaction_and_read": (*OK, 0, []),
    "instagram/text": (*OK, 1, []),
    # VK wants its confirmation code as the answer to "confirmation", and "ok" to everything else.
    "vk/confirmation": (200, "dev-vk-confirmation", 0, []),
    "vk/message_new": (*OK, 1, []),
    "vk/message_new_audio_message": (*OK, 1, []),
    "vk/message_new_photo_geo": (*OK, 1, []),
    "vk/message_reply": (*OK, 0, []),
    "form/chatfuel": (*OK, 1, []),
    "form/manychat": (*OK, 1, []),
    "form/site_json": (*OK, 1, []),
    "form/tilda_test": (*OK, 0, []),
    "form/tilda_urlencoded": (*OK, 1, []),
    "call/leadflow_completed": (*OK, 1, []),
    "call/leadflow_incoming": (*OK, 0, []),
    "call/leadflow_missed": (*OK, 1, []),
    "call/leadflow_outgoing": (*OK, 0, []),
    "call/mango_call_appeared": (*OK, 0, []),
    "call/mango_summary_answered": (*OK, 1, []),
    "call/mango_summary_missed": (*OK, 1, []),
    "call/mango_summary_outgoing": (*OK, 0, []),
    "call/zadarma_notify_end_answered": (*OK, 1, []),
    "call/zadarma_notify_end_missed": (*OK, 1, []),
    "call/zadarma_notify_out_end": (*OK, 0, []),
    "call/zadarma_notify_start": (*OK, 0, []),
    "call/zadarma_zd_echo": (200, "9f3c1a7e5b2d4c6a", 0, []),  # Zadarma's URL check: the token back
    "sms/inbound_da_aws": (*OK, 1, []),
    "sms/inbound_da_smsc": (*OK, 1, []),
    "sms/inbound_stop_smsc": (*OK, 1, []),
    "sms/status_aws": (*OK, 0, ["delivery"]),
    "sms/status_smsc": (*OK, 0, ["delivery"]),
    "sms/status_smsru": (
        200,
        "100",
        0,
        ["delivery", "delivery"],
    ),  # any other answer and SMS.ru retries forever
    "bitrix24/activity_add": (*OK, 0, ["crm"]),
    "bitrix24/company_update_unused": (*OK, 0, []),
    "bitrix24/contact_update": (*OK, 0, ["crm"]),
    "bitrix24/deal_delete": (*OK, 0, ["crm"]),
    "bitrix24/deal_update": (*OK, 0, ["crm"]),
    "bitrix24/lead_add": (*OK, 0, ["crm"]),
    "bitrix24/lead_update": (*OK, 0, ["crm"]),
    "ingest/telegram_text": (*OK, 1, []),
    "ingest/whatsapp_text": (*OK, 1, []),
    "ingest/whatsapp_verify": (200, "1158201444", 0, []),  # Meta's handshake: hub.challenge back
}
SAMPLES = sample_files()


def test_the_table_names_every_sample_in_events():
    assert sorted(EXPECTED) == sorted(sample_id(p) for p in SAMPLES)


def _queued(env, queue: str) -> list[BaseModel]:
    return [parse_queue_message(m["Body"]) for m in env.receive(queue)]


@pytest.mark.parametrize("path", SAMPLES, ids=sample_id)
def test_sample_through_the_handler(env, logs, configure_for, path):
    # Given the platform's delivery of this sample, signed with the secrets we set
    clock.freeze(NOW)
    configure_for(path)
    event = delivery(path)
    channel = channel_of(event)

    # When the ingest handler gets it
    answer = ingest(event)

    # Then the platform gets the answer it expects, as plain text
    status, body, n_score, route_types = EXPECTED[sample_id(path)]
    assert (answer["status"], answer["body"]) == (status, body)
    assert answer["content_type"].startswith("text/plain")
    # and the queues hold what the next step needs, each message stored raw with its TTL
    scored, routed = _queued(env, "ScoreQueue"), _queued(env, "RouteQueue")
    assert len(scored) == n_score and all(isinstance(m, InboundMessage) for m in scored)
    assert [m.type for m in routed] == route_types  # type: ignore[attr-defined]
    assert all(isinstance(m, StaffEvent | CrmEvent | DeliveryReport) for m in routed)
    for message in scored:
        assert message.channel == channel  # type: ignore[attr-defined]
        logs.watch(message.text, message.contact.phone, message.contact.name, message.chat_id)  # type: ignore[attr-defined]
    stored = env.store.inbox.table.scan()["Items"]
    keys = [getattr(m, "message_id", None) or m.event_id for m in [*scored, *routed]]
    assert sorted(i["key"] for i in stored) == sorted(keys)
    for item in stored:
        assert item["channel"] == channel
        assert item["raw"] == body_of(event).decode("utf-8")
        assert item["status"] == "queued"
        assert int(item["expires_at"]) == int((NOW + timedelta(days=14)).timestamp())
        assert parse_queue_message(item["message"]).model_dump() in [
            m.model_dump() for m in [*scored, *routed]
        ]
    # and the logs say what happened without the client's words or number
    assert '"message":"accepted"' in logs.text


def test_a_delivery_of_several_messages_queues_each_under_its_own_key(env, logs):
    # Given one WhatsApp delivery with three client messages in it
    event = delivery(EVENTS / "whatsapp" / "several_messages.json")
    # When it is ingested
    assert ingest(event)["status"] == 200
    # Then each message is a separate InboundMessage with its own dedupe key
    scored = _queued(env, "ScoreQueue")
    ids = [m.message_id for m in scored]  # type: ignore[attr-defined]
    assert len(set(ids)) == 3
    assert {i["key"] for i in env.store.inbox.table.scan()["Items"]} == set(ids)


def test_telegram_text_is_queued_as_the_client_wrote_it(env, logs):
    event = delivery(EVENTS / "ingest" / "telegram_text.json")
    update = json.loads(event["body"])
    assert ingest(event)["status"] == 200
    (message,) = _queued(env, "ScoreQueue")
    assert message.text == update["message"]["text"]  # type: ignore[attr-defined]
    assert message.chat_id == str(update["message"]["chat"]["id"])  # type: ignore[attr-defined]
    assert message.message_id == f"telegram:{update['update_id']}"  # type: ignore[attr-defined]
    logs.watch(message.text)  # type: ignore[attr-defined]
