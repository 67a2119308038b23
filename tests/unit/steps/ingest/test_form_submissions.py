"""Site forms through the ingest handler: which posts are one submission and which are two.

Trust issue, item 6: a form field named ``id`` is no submission id. A site form with a hidden
``id`` that never changes made every later submission a duplicate of the first for 14 days.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from leadflow import clock
from tests.support.webhooks import ingest, post

NOW = datetime(2026, 3, 14, 4, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    clock.freeze(NOW)


def _submit(fields: dict) -> int:
    body = json.dumps(fields, ensure_ascii=False).encode()
    headers = {"content-type": "application/json", "x-form-secret": "dev-form-secret"}
    return int(ingest(post("form", body, headers))["status"])


def test_item6_a_constant_id_field_does_not_swallow_the_next_submissions(env, logs, frozen):
    # Given a site form whose hidden field "id" names the form, not the submission
    form = {"id": "contact-form", "comment": "Хочу на маникюр"}
    # When three different clients send it within an hour
    for minute, name in ((0, "Ольга"), (20, "Ирина"), (40, "Светлана")):
        clock.freeze(NOW + timedelta(minutes=minute))
        assert _submit({**form, "name": name, "phone": f"+7916765432{minute // 20}"}) == 200
    # Then each of them is a lead on its way to score
    queued = env.receive("ScoreQueue")
    assert len(queued) == 3


def test_item6_a_double_click_is_one_submission(env, logs, frozen):
    # Given a form without a builder's submission id, sent twice within seconds (a double click)
    fields = {"id": "contact-form", "name": "Ольга", "phone": "+79167654321", "comment": "стрижка"}
    assert _submit(fields) == 200
    clock.advance(timedelta(seconds=2))
    assert _submit(fields) == 200
    # Then one message is queued
    assert len(env.receive("ScoreQueue")) == 1


def test_item6_the_same_form_sent_again_later_is_a_new_submission(env, logs, frozen):
    # Given a client who sent a form and, nobody having called, sends the very same one an hour later
    fields = {"name": "Ольга", "phone": "+79167654321", "comment": "перезвоните"}
    assert _submit(fields) == 200
    clock.advance(timedelta(hours=1))
    assert _submit(fields) == 200
    # Then the second is not taken for a duplicate of the first
    assert len(env.receive("ScoreQueue")) == 2


def test_item6_a_builder_submission_id_still_dedupes_a_retry_at_any_distance(env, logs, frozen):
    # Given a Tilda post (tranid) and Tilda's retry of it ten minutes later
    fields = {"name": "Ольга", "phone": "+79167654321", "tranid": "7310245:3145123701"}
    assert _submit(fields) == 200
    clock.advance(timedelta(minutes=10))
    assert _submit(fields) == 200
    # Then one message is queued
    assert len(env.receive("ScoreQueue")) == 1
