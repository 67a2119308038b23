"""amoCRM webhooks (form-encoded ``leads[status][0][…]``) through handle_webhook: what is taken,
what is refused, and that nothing malformed gets further than a 4xx."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from leadflow.adapters.channels.amocrm_events import handle_webhook
from leadflow.adapters.channels.base import WebhookError, WebhookRequest
from leadflow.settings import reset_caches

SECRET = "amo-hook-secret"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(autouse=True)
def _configured(monkeypatch):
    monkeypatch.setenv("AMOCRM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("AMOCRM_BASE_URL", "https://salon.amocrm.ru")
    reset_caches()


def post(pairs: list[tuple[str, str]] | str, secret: str | None = SECRET, method: str = "POST"):
    body = pairs if isinstance(pairs, str) else urlencode(pairs)
    query = {"secret": secret} if secret is not None else {}
    return handle_webhook(WebhookRequest(method, "amocrm", FORM, query, body.encode()))


STATUS = [
    ("leads[status][0][id]", "25399013"), ("leads[status][0][status_id]", "142"),
    ("leads[status][0][old_status_id]", "7039101"), ("leads[status][0][pipeline_id]", "9217056"),
    ("leads[status][0][updated_at]", "1773460800"),
    ("account[subdomain]", "salon"), ("account[id]", "7039099"),
]  # fmt: skip


def test_a_status_change_and_a_deletion_become_crm_events():
    result = post([*STATUS, ("leads[delete][0][id]", "25399014"), ("leads[delete][0][status_id]", "143")])

    events = {(e.event, e.crm_id, e.entity) for e in result.crm_events}
    assert events == {("STATUS", "25399013", "lead"), ("DELETE", "25399014", "lead")}
    status = next(e for e in result.crm_events if e.event == "STATUS")
    assert status.event_id == "amocrm:STATUS:25399013:142:1773460800"  # the same change twice: one id
    assert status.received_at.timestamp() == 1773460800


def test_several_leads_in_one_hook_each_become_an_event():
    pairs = [*STATUS, ("leads[status][1][id]", "25399020"), ("leads[status][1][status_id]", "7039102")]
    assert sorted(e.crm_id for e in post(pairs).crm_events) == ["25399013", "25399020"]


@pytest.mark.parametrize("secret", [None, "", "guess"])
def test_without_the_right_secret_it_is_refused(secret):
    with pytest.raises(WebhookError) as refused:
        post(STATUS, secret=secret)
    assert refused.value.status == 403


def test_an_unset_secret_refuses_everything(monkeypatch):
    monkeypatch.delenv("AMOCRM_WEBHOOK_SECRET")
    with pytest.raises(WebhookError) as refused:
        post(STATUS)
    assert refused.value.status == 403


def test_another_account_is_refused():
    pairs = [(k, "other" if k == "account[subdomain]" else v) for k, v in STATUS]
    with pytest.raises(WebhookError) as refused:
        post(pairs)
    assert refused.value.status == 403


def test_events_we_do_not_use_are_answered_and_ignored():
    result = post([("contacts[add][0][id]", "5"), ("account[subdomain]", "salon")])
    assert result.status == 200 and result.crm_events == [] and result.note


@pytest.mark.parametrize(
    "body",
    ["leads[status][0][status_id]=142", "leads[status][0][id]=abc", "leads[status][0][id]=" + "9" * 30],
)
def test_a_change_without_a_lead_id_is_a_400(body):
    with pytest.raises(WebhookError) as refused:
        post(body)
    assert refused.value.status == 400


def test_only_post_is_taken():
    with pytest.raises(WebhookError) as refused:
        post(STATUS, method="GET")
    assert refused.value.status == 405
