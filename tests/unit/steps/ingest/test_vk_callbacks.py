"""VK Callback API through the ingest handler: the confirmation handshake and the community check.

Trust issue, item 14: VK may send ``confirmation`` without the ``secret`` field, and it must still
be answered; every callback names its community (``group_id``), and a stack serves one.
"""

from __future__ import annotations

import json

import pytest

from leadflow.adapters.channels import vk
from leadflow.settings import reset_caches
from tests.support.webhooks import EVENTS, SECRETS, ingest, platform_headers, post

OURS = 218734561  # the community of events/vk/*


def _deliver(body: dict) -> dict:
    raw = json.dumps(body, ensure_ascii=False).encode()
    return ingest(post("vk", raw, platform_headers("vk", raw)))


def _sample(name: str, **changes: object) -> dict:
    body = json.loads((EVENTS / "vk" / name).read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


@pytest.fixture
def our_community(env, monkeypatch):
    monkeypatch.setenv("VK_GROUP_ID", str(OURS))
    reset_caches()


def test_item14_confirmation_without_a_secret_is_answered_with_the_code(env, logs):
    # Given VK confirming the server before the secret key reaches the request
    answer = _deliver(_sample("confirmation.json", secret=None))
    # Then it gets the confirmation string, as plain text
    assert (answer["status"], answer["body"]) == (200, SECRETS["VK_CONFIRMATION_CODE"])


def test_item14_confirmation_with_the_right_secret_is_answered(env, logs):
    answer = _deliver(_sample("confirmation.json"))
    assert (answer["status"], answer["body"]) == (200, SECRETS["VK_CONFIRMATION_CODE"])


def test_item14_confirmation_with_a_wrong_secret_is_refused(env, logs):
    answer = _deliver(_sample("confirmation.json", secret="not-the-secret"))
    assert answer["status"] == 403 and SECRETS["VK_CONFIRMATION_CODE"] not in answer["body"]


def test_item14_a_message_without_a_secret_is_still_refused(env, logs):
    assert _deliver(_sample("message_new.json", secret=None))["status"] == 403
    assert env.receive("ScoreQueue") == []


def test_item14_a_callback_for_another_community_is_refused(env, logs, our_community):
    # Given a stack configured for one VK community
    # When a correctly signed message comes for another one (the secret key leaked, or was reused)
    answer = _deliver(_sample("message_new.json", group_id=OURS + 1))
    # Then it is refused and nothing is queued, and the log says why
    assert answer["status"] == 403
    assert env.receive("ScoreQueue") == []
    assert "group_id" in logs.text


def test_item14_a_confirmation_for_another_community_gets_no_code(env, logs, our_community):
    answer = _deliver(_sample("confirmation.json", group_id=OURS + 1, secret=None))
    assert answer["status"] == 403 and SECRETS["VK_CONFIRMATION_CODE"] not in answer["body"]


def test_item14_our_community_is_taken(env, logs, our_community):
    assert _deliver(_sample("message_new.json"))["status"] == 200
    assert len(env.receive("ScoreQueue")) == 1
    assert _deliver(_sample("confirmation.json", secret=None))["body"] == SECRETS["VK_CONFIRMATION_CODE"]


def test_item14_without_vk_group_id_any_community_is_taken_with_one_warning(env, logs, monkeypatch):
    monkeypatch.setattr(vk, "_warned_any_community", False)
    # Given no VK_GROUP_ID
    # When two communities' messages come
    assert _deliver(_sample("message_new.json"))["status"] == 200
    assert _deliver(_sample("message_new.json", group_id=OURS + 1, event_id="other-event"))["status"] == 200
    # Then both are taken, and the log warns once that the community is not checked
    assert len(env.receive("ScoreQueue")) == 2
    assert logs.text.count("VK_GROUP_ID is not set") == 1
