"""Bitrix24 outbound webhooks: events/bitrix24/*.json and variants through handle_webhook."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow import clock
from leadflow.adapters.channels.base import WebhookError, WebhookRequest, WebhookResult
from leadflow.adapters.channels.bitrix24_events import handle_webhook, parse_php_form

EVENTS = Path(__file__).resolve().parents[4] / "events" / "bitrix24"
APP_TOKEN = "dev-b24-app-token"
URLENCODED = "application/x-www-form-urlencoded"


def request_from_event(path: Path) -> WebhookRequest:
    return WebhookRequest.from_api_gateway(json.loads(path.read_text(encoding="utf-8")))


def outbound_body(
    event="ONCRMLEADUPDATE", record_id="1287", ts="1772437183", token=APP_TOKEN, drop=()
) -> str:
    pairs = [
        ("event", event),
        ("event_handler_id", "27"),
        ("data[FIELDS][ID]", record_id),
        ("ts", ts),
        ("auth[domain]", "salon-liliya.bitrix24.ru"),
        ("auth[client_endpoint]", "https://salon-liliya.bitrix24.ru/rest/"),
        ("auth[server_endpoint]", "https://oauth.bitrix.info/rest/"),
        ("auth[member_id]", "a223c6b3710f85df22e9377d6c4f7553"),
        ("auth[application_token]", token),
    ]
    return urlencode([(k, v) for k, v in pairs if k not in drop])


def post(body: bytes | str, content_type: str | None = URLENCODED, method: str = "POST") -> WebhookResult:
    raw = body.encode() if isinstance(body, str) else body
    headers = {"content-type": content_type} if content_type else {}
    return handle_webhook(WebhookRequest(method, "bitrix24", headers, {}, raw))


@pytest.fixture(autouse=True)
def _app_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BITRIX24_APP_TOKEN", APP_TOKEN)


@pytest.fixture(autouse=True)
def _when_the_samples_were_sent() -> None:
    # the samples' ts run from 07:39:43 to 07:43:25 UTC; outbound_body's later change is 07:53:19
    clock.freeze(datetime(2026, 3, 2, 7, 53, 19, tzinfo=UTC))


EXPECTED = {
    "lead_update.json": ("ONCRMLEADUPDATE", "lead", "1287"),
    "lead_add.json": ("ONCRMLEADADD", "lead", "1288"),
    "deal_update.json": ("ONCRMDEALUPDATE", "deal", "342"),
    "deal_delete.json": ("ONCRMDEALDELETE", "deal", "341"),
    "contact_update.json": ("ONCRMCONTACTUPDATE", "contact", "905"),
    "activity_add.json": ("ONCRMACTIVITYADD", "activity", "15520"),
    "company_update_unused.json": None,
}


def test_every_bitrix24_event_file_is_covered():
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bitrix24_event_files(name):
    request = request_from_event(EVENTS / name)
    result = handle_webhook(request)
    assert result.status == 200 and result.messages == []
    if EXPECTED[name] is None:
        assert result.crm_events == [] and "not used" in result.note
        return
    expected = EXPECTED[name]
    assert expected is not None
    event, entity, crm_id = expected
    ts = dict(parse_qsl(request.body.decode()))["ts"]
    (crm_event,) = result.crm_events
    assert (crm_event.event, crm_event.entity, crm_event.crm_id) == (event, entity, crm_id)
    assert crm_event.event_id == f"bitrix24:{event}:{crm_id}:{ts}"
    assert crm_event.received_at == datetime.fromtimestamp(int(ts), tz=UTC)


def test_redelivery_has_the_same_event_id_and_a_later_change_a_new_one():
    first = post(outbound_body()).crm_events[0]
    again = post(outbound_body()).crm_events[0]
    later = post(outbound_body(ts="1772437999")).crm_events[0]
    assert first.event_id == again.event_id
    assert later.event_id != first.event_id


@pytest.mark.parametrize(
    ("sent", "taken"),
    [(-15 * 60, True), (-15 * 60 - 1, False), (-86_400 * 30, False), (120, True), (121, False)],
)
def test_item17_ts_must_be_within_the_window(sent, taken):
    ts = str(int(clock.wall_now().timestamp()) + sent)
    if taken:
        assert post(outbound_body(ts=ts)).crm_events[0].event_id.endswith(f":{ts}")
    else:
        with pytest.raises(WebhookError) as refused:
            post(outbound_body(ts=ts))
        assert refused.value.status == 403 and "1287" not in refused.value.reason


def test_activity_update_and_lowercase_event_name():
    (crm_event,) = post(outbound_body(event="onCrmActivityUpdate", record_id="77")).crm_events
    assert (crm_event.event, crm_event.entity) == ("ONCRMACTIVITYUPDATE", "activity")


def test_json_body_is_accepted_too():
    payload = {
        "event": "ONCRMDEALADD",
        "data": {"FIELDS": {"ID": 15}},
        "ts": "1772437183",
        "auth": {"application_token": APP_TOKEN, "domain": "salon-liliya.bitrix24.ru"},
    }
    (crm_event,) = post(json.dumps(payload), content_type="application/json").crm_events
    assert (crm_event.entity, crm_event.crm_id) == ("deal", "15")


@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_wrong_application_token_is_403(token):
    with pytest.raises(WebhookError) as err:
        post(outbound_body(token=token))
    assert err.value.status == 403


def test_missing_auth_is_403():
    with pytest.raises(WebhookError) as err:
        post(outbound_body(drop=("auth[application_token]",)))
    assert err.value.status == 403


def test_unset_app_token_refuses_everything(monkeypatch):
    monkeypatch.delenv("BITRIX24_APP_TOKEN")
    with pytest.raises(WebhookError) as err:
        post(outbound_body())
    assert err.value.status == 403
    assert "not configured" in err.value.reason


def test_unknown_event_is_200_with_a_note():
    result = post(outbound_body(event="ONCRMCOMPANYADD"))
    assert result.status == 200 and result.crm_events == []
    assert "ONCRMCOMPANYADD" in result.note


@pytest.mark.parametrize(
    "body",
    [
        outbound_body(drop=("data[FIELDS][ID]",)),
        outbound_body(drop=("ts",)),
        outbound_body(ts="yesterday"),
        outbound_body(ts="99999999999999"),
        outbound_body(record_id=""),
    ],
)
def test_event_without_id_or_ts_is_400(body):
    with pytest.raises(WebhookError) as err:
        post(body)
    assert err.value.status == 400


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"\xff\xfe", URLENCODED), (b"{oops", "application/json"), (b"[1]", "application/json")],
)
def test_malformed_bodies_are_400(body, content_type):
    with pytest.raises(WebhookError) as err:
        post(body, content_type)
    assert err.value.status == 400


def test_only_post_is_accepted():
    with pytest.raises(WebhookError) as err:
        post(outbound_body(), method="GET")
    assert err.value.status == 405


def test_php_style_keys_nest_like_php():
    parsed = parse_php_form(
        "event=X&data[FIELDS][ID]=5&data[FIELDS][ID]=6&auth[application_token]=t&list[]=a&list[]=b&x[y=1&[z]=2"
    )
    assert parsed["data"] == {"FIELDS": {"ID": "5"}}  # the first value wins, as a PHP array key would not
    assert parsed["auth"] == {"application_token": "t"}
    assert parsed["list"] == ["a", "b"]
    assert parsed["x"] == "1" and "" not in parsed


KEYS = st.sampled_from(
    ["event", "ts", "data[FIELDS][ID]", "data[FIELDS]", "data", "auth[application_token]", "auth", "auth[]",
     "data[FIELDS][ID][x]", "a[b][c][d][e][f][g][h][i]", "[]"]
)  # fmt: skip
VALUES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["ONCRMLEADUPDATE", "ONCRMDEALDELETE", APP_TOKEN, "1772437183", "12"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=st.lists(st.tuples(KEYS, VALUES), max_size=10),
    raw=st.binary(max_size=300),
    use_raw=st.booleans(),
    content_type=st.sampled_from([URLENCODED, "application/json", None, "text/plain"]),
)
def test_random_input_gives_a_result_or_a_4xx(pairs, raw, use_raw, content_type):
    body = raw if use_raw else urlencode([*pairs, ("auth[application_token]", APP_TOKEN)])
    try:
        result = post(body, content_type)
    except WebhookError as exc:
        assert 400 <= exc.status < 500
    else:
        assert result.status == 200
        for crm_event in result.crm_events:
            assert crm_event.event_id.startswith(f"bitrix24:{crm_event.event}:{crm_event.crm_id}:")
