"""What ingest keeps for telling a business's branches apart: the number, community or account the
client reached, and a branch named by the webhook URL or a form field."""

from __future__ import annotations

import json

import pytest

from tests.support.webhooks import EVENTS, changed, delivery, ingest, post


def queued(env) -> dict:
    (message,) = env.receive("ScoreQueue")
    return json.loads(message["Body"])


@pytest.mark.parametrize(
    ("sample", "recipient"),
    [
        ("whatsapp/text.json", "+74951234567"),  # metadata.display_phone_number
        ("call/leadflow_missed.json", "+74951234567"),  # the line that was called
        ("vk/message_new.json", "vk:218734561"),  # the community written to
        ("instagram/text.json", "instagram:17841405793187218"),  # the business account
    ],
)
def test_the_business_side_a_client_reached_travels_with_the_message(env, sample, recipient):
    assert ingest(delivery(EVENTS / sample))["status"] == 200
    assert queued(env)["recipient"] == recipient


def test_a_branch_named_in_the_webhook_url_is_kept(env):
    # A business gives each branch's site form its own URL: …/webhooks/form?secret=…&branch=khimki
    event = changed(delivery(EVENTS / "form" / "site_json.json"), query={"branch": "khimki"})
    assert ingest(event)["status"] == 200
    assert queued(env)["branch"] == "khimki"


def test_a_forms_branch_field_is_kept_and_shown_in_the_text(env, secrets):
    body = json.dumps({"name": "Анна", "phone": "+79161234567", "Филиал": "Химки"}).encode()
    event = post("form", body, {"x-form-secret": secrets["FORM_SECRET"], "content-type": "application/json"})
    assert ingest(event)["status"] == 200
    message = queued(env)
    assert message["branch"] == "Химки"
    assert "Филиал: Химки" in message["text"]
