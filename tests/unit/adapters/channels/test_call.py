"""Telephony: our call JSON, Zadarma and Mango Office notifications (events/call/*.json and variants)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow import clock
from leadflow.adapters.channels.base import WebhookError, WebhookRequest, WebhookResult
from leadflow.adapters.channels.call import client_lines, handle_webhook, zadarma_signature

EVENTS = Path(__file__).resolve().parents[4] / "events" / "call"
CALL_SECRET = "dev-call-secret"
URLENCODED = "application/x-www-form-urlencoded"


def request_from_event(path: Path) -> WebhookRequest:
    return WebhookRequest.from_api_gateway(json.loads(path.read_text(encoding="utf-8")))


def send(
    body: bytes | str,
    *,
    query: dict | None = None,
    headers: dict | None = None,
    method: str = "POST",
) -> WebhookResult:
    raw = body.encode() if isinstance(body, str) else body
    return handle_webhook(WebhookRequest(method, "call", headers or {}, query or {}, raw))


def own(payload: dict, secret: str | None = CALL_SECRET) -> WebhookResult:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-call-secret"] = secret
    return send(json.dumps(payload, ensure_ascii=False), headers=headers)


# Independent re-statements of the providers' documented signing, not the module's helpers:
# Zadarma signs base64(hex HMAC-SHA1), Mango signs sha256(api_key + json + salt) in hex.
def zadarma_post(
    fields: dict, signed: tuple[str, ...], *, key: str = CALL_SECRET, tamper=None
) -> WebhookResult:
    string = "".join(str(fields.get(f, "")) for f in signed)
    hex_digest = hmac.new(key.encode(), string.encode(), hashlib.sha1).hexdigest()
    signature = base64.b64encode(hex_digest.encode()).decode()
    body_fields = {**fields, **(tamper or {})}
    return send(
        urlencode(body_fields),
        query={"provider": "zadarma"},
        headers={"content-type": URLENCODED, "signature": signature},
    )


def mango_post(
    payload: dict | str, *, salt: str = CALL_SECRET, subpath: str = "", sent_json=None
) -> WebhookResult:
    signed_json = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    api_key = "k2m9x7q4w1e8r5t6y3u0i2o9p7a5s3d1"
    sign = hashlib.sha256((api_key + signed_json + salt).encode()).hexdigest()
    body = urlencode({"vpbx_api_key": api_key, "sign": sign, "json": sent_json or signed_json})
    return send(body, query={"provider": "mango" + subpath}, headers={"content-type": URLENCODED})


@pytest.fixture(autouse=True)
def _call_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALL_SECRET", CALL_SECRET)


@pytest.fixture(autouse=True)
def _after_the_sample_calls() -> None:
    # the samples' calls start between 10:15 and 12:00 Moscow time (07:15–09:00 UTC) on 2 March
    clock.freeze(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))


def zadarma_key(fields: dict) -> str:
    """The dedupe key of a Zadarma call: the signed fields of its end, never the unsigned call id."""
    signed = "".join(str(fields.get(f, "")) for f in ("caller_id", "called_did", "call_start"))
    return "call:zadarma:" + hashlib.sha256(signed.encode()).hexdigest()[:32]


def sample_fields(name: str) -> dict:
    return dict(parse_qsl(json.loads((EVENTS / name).read_text(encoding="utf-8"))["body"]))


# --------------------------------------------------------------------------- fixtures

EXPECTED = {
    # file: (message_id or None, missed)
    "leadflow_missed.json": ("call:leadflow:c-20260302-0001:missed", True),
    "leadflow_completed.json": ("call:leadflow:c-20260302-0002:completed", False),
    "leadflow_incoming.json": (None, None),
    "leadflow_outgoing.json": (None, None),
    "zadarma_notify_start.json": (None, None),
    "zadarma_notify_end_missed.json": (zadarma_key(sample_fields("zadarma_notify_end_missed.json")), True),
    "zadarma_notify_end_answered.json": (
        zadarma_key(sample_fields("zadarma_notify_end_answered.json")),
        False,
    ),
    "zadarma_notify_out_end.json": (None, None),
    "zadarma_zd_echo.json": (None, None),
    "mango_summary_missed.json": ("call:mango:MTA2NDY0NTU4NDE6MTUw:missed", True),
    "mango_summary_answered.json": ("call:mango:MTA2NDY0NTU4NDI6MTUx:completed", False),
    "mango_summary_outgoing.json": (None, None),
    "mango_call_appeared.json": (None, None),
}


def test_every_call_event_file_is_covered():
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_call_event_files(name):
    message_id, missed = EXPECTED[name]
    result = handle_webhook(request_from_event(EVENTS / name))
    assert result.status == 200
    if message_id is None:
        assert result.messages == [] and result.note
        return
    (message,) = result.messages
    assert message.message_id == message_id
    assert message.channel == "call"
    assert message.call is not None and message.call.missed is missed
    assert message.chat_id == message.contact.phone and message.chat_id.startswith("+7")
    assert message.call.called_number == "+74951234567"


def test_missed_call_is_a_message_to_call_back():
    (message,) = handle_webhook(request_from_event(EVENTS / "leadflow_missed.json")).messages
    assert message.call.missed and message.call.direction == "in"
    assert message.chat_id == "+79161234567"
    assert message.text == ""
    assert message.received_at == datetime(2026, 3, 2, 7, 15, 3, tzinfo=UTC)


def test_answered_call_carries_the_clients_lines_only():
    (message,) = handle_webhook(request_from_event(EVENTS / "leadflow_completed.json")).messages
    assert (
        message.text
        == "Здравствуйте, хочу записаться на стрижку в четверг вечером.\nОтлично, меня зовут Светлана."
    )
    assert message.chat_id == "+79057654321"  # "89057654321" normalised
    assert message.call.duration_s == 95
    assert message.call.recording_url == "https://pbx.example.ru/rec/c-20260302-0002.mp3"


def test_mango_summary_times_become_received_at_and_duration():
    (message,) = handle_webhook(request_from_event(EVENTS / "mango_summary_answered.json")).messages
    assert message.call.duration_s == 143
    assert message.received_at == datetime(2026, 3, 2, 7, 25, 3, tzinfo=UTC)


# --------------------------------------------------------------------------- our JSON


def test_start_then_end_of_one_call_makes_exactly_one_message():
    call = {"call_id": "c-7", "caller": "+79161234567", "called": "+74951234567"}
    start = own({**call, "event": "incoming"})
    end = own({**call, "event": "missed"})
    assert start.messages == []
    assert [m.message_id for m in end.messages] == ["call:leadflow:c-7:missed"]
    # a redelivery of the end event has the same id: the dedupe downstream drops it
    assert own({**call, "event": "missed"}).messages[0].message_id == "call:leadflow:c-7:missed"


def test_secret_in_query_is_accepted():
    body = json.dumps({"event": "missed", "call_id": "q-1", "caller": "+79161234567"})
    result = send(body, query={"secret": CALL_SECRET}, headers={"content-type": "application/json"})
    assert len(result.messages) == 1


@pytest.mark.parametrize("secret", ["wrong", "", None])
def test_wrong_or_missing_call_secret_is_403(secret):
    with pytest.raises(WebhookError) as err:
        own({"event": "missed", "call_id": "x", "caller": "+79161234567"}, secret=secret)
    assert err.value.status == 403


@pytest.mark.parametrize("provider", [None, "zadarma", "mango"])
def test_unset_call_secret_refuses_every_provider(monkeypatch, provider):
    monkeypatch.delenv("CALL_SECRET")
    query = {"provider": provider} if provider else {}
    with pytest.raises(WebhookError) as err:
        send(b"event=NOTIFY_END", query=query, headers={"x-call-secret": CALL_SECRET})
    assert err.value.status == 403
    with pytest.raises(WebhookError):
        send(b"", query={**query, "zd_echo": "abc"}, method="GET")


def test_outgoing_call_in_our_json_is_no_lead():
    result = own({"event": "completed", "call_id": "o-1", "direction": "out", "caller": "+79161234567"})
    assert result.messages == [] and "outgoing" in result.note


def test_withheld_caller_is_no_lead():
    result = own({"event": "missed", "call_id": "w-1", "caller": "anonymous"})
    assert result.messages == [] and "withheld" in result.note


@pytest.mark.parametrize(
    ("transcript", "expected"),
    [
        (
            [
                {"speaker": "operator", "text": "Здравствуйте"},
                {"speaker": "client", "text": "Хочу на маникюр"},
            ],
            "Хочу на маникюр",
        ),
        ([{"role": "Клиент", "text": "в пятницу"}, {"role": "agent", "text": "ок"}, "junk"], "в пятницу"),
        ("Запишите меня на стрижку", "Запишите меня на стрижку"),
        ("Оператор: Алло\nАбонент: Хочу записаться\nМенеджер: Когда?", "Хочу записаться"),
        (None, ""),
    ],
)
def test_client_lines(transcript, expected):
    assert client_lines(transcript) == expected


@pytest.mark.parametrize(
    "payload",
    [
        {"call_id": "x", "caller": "+79161234567"},
        {"event": "hung_up", "call_id": "x", "caller": "+79161234567"},
        {"event": "missed", "caller": "+79161234567"},
        {"event": "missed", "call_id": "x", "caller": "+79161234567", "duration_s": -5},
        {"event": "missed", "call_id": "x", "caller": 79161234567},
    ],
)
def test_invalid_call_json_is_400_without_personal_data(payload):
    with pytest.raises(WebhookError) as err:
        own(payload)
    assert err.value.status == 400
    assert "7916" not in err.value.reason


@pytest.mark.parametrize("body", [b"{", b"[]", b"\xff\xfe", b""])
def test_malformed_call_body_is_400(body):
    with pytest.raises(WebhookError) as err:
        send(body, headers={"x-call-secret": CALL_SECRET})
    assert err.value.status == 400


def test_unknown_provider_is_400():
    with pytest.raises(WebhookError) as err:
        send(b"{}", query={"provider": "asterisk"}, headers={"x-call-secret": CALL_SECRET})
    assert err.value.status == 400


# --------------------------------------------------------------------------- Zadarma

ZADARMA_END = {
    "event": "NOTIFY_END",
    "call_start": "2026-03-02 10:15:03",
    "pbx_call_id": "in_abc",
    "caller_id": "79161234567",
    "called_did": "74951234567",
    "duration": "0",
    "disposition": "busy",
}
END_SIGNED = ("caller_id", "called_did", "call_start")


def test_zadarma_good_signature_missed_call():
    (message,) = zadarma_post(ZADARMA_END, END_SIGNED).messages
    assert message.message_id == zadarma_key(ZADARMA_END)
    assert message.call.missed is True


def test_zadarma_signature_with_another_secret_is_403():
    with pytest.raises(WebhookError) as err:
        zadarma_post(ZADARMA_END, END_SIGNED, key="someone-elses-secret")
    assert err.value.status == 403


def test_zadarma_tampered_caller_is_403():
    with pytest.raises(WebhookError) as err:
        zadarma_post(ZADARMA_END, END_SIGNED, tamper={"caller_id": "79990000000"})
    assert err.value.status == 403


def test_zadarma_missing_signature_is_403():
    with pytest.raises(WebhookError) as err:
        send(urlencode(ZADARMA_END), query={"provider": "zadarma"}, headers={"content-type": URLENCODED})
    assert err.value.status == 403


def test_zadarma_raw_base64_hmac_is_not_accepted():
    # base64 of the raw digest is a common mistake; Zadarma sends base64 of the hex digest
    string = "".join(ZADARMA_END[f] for f in END_SIGNED)
    raw = base64.b64encode(hmac.new(CALL_SECRET.encode(), string.encode(), hashlib.sha1).digest()).decode()
    with pytest.raises(WebhookError):
        send(urlencode(ZADARMA_END), query={"provider": "zadarma"}, headers={"signature": raw})


def test_zadarma_answered_call_has_duration():
    fields = {**ZADARMA_END, "disposition": "answered", "duration": "61"}
    (message,) = zadarma_post(fields, END_SIGNED).messages
    assert message.message_id == zadarma_key(ZADARMA_END)  # one call, one key, whatever its outcome
    assert (message.call.missed, message.call.duration_s) == (False, 61)


def test_zadarma_outgoing_end_is_no_lead():
    fields = {"event": "NOTIFY_OUT_END", "call_start": "2026-03-02 12:00:00", "pbx_call_id": "out_1",
              "internal": "100", "destination": "79161234567", "disposition": "answered"}  # fmt: skip
    result = zadarma_post(fields, ("internal", "destination", "call_start"))
    assert result.messages == [] and "outgoing" in result.note


def test_zadarma_record_notice_is_verified_and_no_lead():
    fields = {"event": "NOTIFY_RECORD", "pbx_call_id": "in_abc", "call_id_with_rec": "1772438560.3410521"}
    assert zadarma_post(fields, ("pbx_call_id", "call_id_with_rec")).messages == []
    with pytest.raises(WebhookError):
        zadarma_post(fields, ("pbx_call_id", "call_id_with_rec"), tamper={"pbx_call_id": "in_other"})


def test_item12_signature_is_base64_of_the_hex_hmac_sha1():
    # trust.md's vector, derived from Zadarma's official client (lib/Client.php encodeSignature)
    signed = "+79161234567" + "78430000001" + "2026-06-30 11:59:00"
    assert (
        zadarma_signature(signed, "test_secret") == "MDdmOGQzOTY3M2NlOTY2NDJlYjFlNjhjNTU5ZThlMTY1NDdhZDE2Mw=="
    )


def test_item12_unsigned_fields_do_not_change_the_key():
    changed = {**ZADARMA_END, "pbx_call_id": "in_other", "disposition": "answered", "duration": "9"}
    first = zadarma_post(ZADARMA_END, END_SIGNED).messages[0]
    again = zadarma_post(changed, END_SIGNED).messages[0]
    assert first.message_id == again.message_id


@pytest.mark.parametrize(
    ("call_start", "status"),
    [
        ("2026-03-01 12:30:00", 200),  # 24 h before 12:30 Moscow time
        ("2026-03-01 12:29:59", 403),
        ("2026-03-02 23:59:59", 200),  # less than 12 h ahead
        ("2026-03-03 00:30:01", 403),
        ("2026-03-02", 400),
        ("02.03.2026 12:30:00", 400),
    ],
)
def test_item12_call_start_must_be_fresh(call_start, status):
    fields = {**ZADARMA_END, "call_start": call_start}
    if status == 200:
        assert zadarma_post(fields, END_SIGNED).messages
        return
    with pytest.raises(WebhookError) as err:
        zadarma_post(fields, END_SIGNED)
    assert err.value.status == status
    assert "79161234567" not in err.value.reason


def test_item12_an_unknown_call_timezone_refuses_zadarma(monkeypatch):
    monkeypatch.setenv("CALL_TIMEZONE", "Mars/Olympus")
    with pytest.raises(WebhookError) as err:
        zadarma_post(ZADARMA_END, END_SIGNED)
    assert err.value.status == 403 and "CALL_TIMEZONE" in err.value.reason


def test_zadarma_zd_echo_returns_the_token():
    result = send(b"", query={"provider": "zadarma", "zd_echo": "f00dBabe-42"}, method="GET")
    assert (result.status, result.body, result.messages) == (200, "f00dBabe-42", [])


@pytest.mark.parametrize("echo", ["", "<script>alert(1)</script>", "x" * 200])
def test_zadarma_zd_echo_refuses_anything_but_a_plain_token(echo):
    with pytest.raises(WebhookError) as err:
        send(b"", query={"provider": "zadarma", "zd_echo": echo}, method="GET")
    assert err.value.status == 400


def test_zadarma_end_without_call_id_is_400():
    fields = {k: v for k, v in ZADARMA_END.items() if k != "pbx_call_id"}
    with pytest.raises(WebhookError) as err:
        zadarma_post(fields, END_SIGNED)
    assert err.value.status == 400


# --------------------------------------------------------------------------- Mango Office

MANGO_MISSED = {
    "entry_id": "RW50cnk6MQ==",
    "call_direction": 1,
    "from": {"number": "79161234567"},
    "to": {"extension": "101", "number": "sip:anna@vpbx400123456.mangosip.ru", "line_number": "74951234567"},
    "create_time": 1772435703,
    "forward_time": 1772435707,
    "talk_time": 0,
    "end_time": 1772435734,
    "entry_result": 0,
    "disconnect_reason": 1111,
}


def test_mango_good_sign_missed_call_without_path_hint():
    (message,) = mango_post(MANGO_MISSED).messages
    assert message.message_id == "call:mango:RW50cnk6MQ==:missed"
    assert message.call.missed is True
    assert message.received_at == datetime.fromtimestamp(1772435703, tz=UTC)


def test_mango_sign_with_another_salt_is_403():
    with pytest.raises(WebhookError) as err:
        mango_post(MANGO_MISSED, salt="another-salt")
    assert err.value.status == 403


def test_mango_json_changed_after_signing_is_403():
    signed = json.dumps(MANGO_MISSED, separators=(",", ":"))
    forged = signed.replace("79161234567", "79990000000")
    with pytest.raises(WebhookError) as err:
        mango_post(signed, sent_json=forged)
    assert err.value.status == 403


def test_mango_missing_form_fields_is_400():
    with pytest.raises(WebhookError) as err:
        send(urlencode({"json": "{}"}), query={"provider": "mango"})
    assert err.value.status == 400


def test_mango_signed_garbage_json_is_400():
    with pytest.raises(WebhookError) as err:
        mango_post("{not json")
    assert err.value.status == 400


def test_mango_answered_summary_by_path():
    answered = {**MANGO_MISSED, "entry_result": 1, "talk_time": 1772435710, "end_time": 1772435800}
    (message,) = mango_post(answered, subpath="/events/summary").messages
    assert (message.call.missed, message.call.duration_s) == (False, 90)


def test_mango_call_state_and_outgoing_summary_are_no_lead():
    appeared = {
        "entry_id": "e1",
        "call_id": "c1",
        "seq": 1,
        "call_state": "Appeared",
        "from": {"number": "79161234567"},
    }
    assert mango_post(appeared, subpath="/events/call").messages == []
    assert mango_post({**MANGO_MISSED, "call_direction": 2}).messages == []
    assert mango_post({"ping": 1}).note == "mango event not used"


def test_mango_summary_without_entry_id_is_400():
    with pytest.raises(WebhookError) as err:
        mango_post({k: v for k, v in MANGO_MISSED.items() if k != "entry_id"})
    assert err.value.status == 400


# --------------------------------------------------------------------------- random input

TEXT = st.text(max_size=30)
ZADARMA_EVENTS = ["NOTIFY_START", "NOTIFY_END", "NOTIFY_OUT_END", "NOTIFY_RECORD", "NOTIFY_IVR", ""]
ZADARMA_KEYS = ["caller_id", "called_did", "call_start", "pbx_call_id", "duration", "disposition", "internal",
                "destination", "call_id_with_rec"]  # fmt: skip
ZADARMA_FIELDS = st.fixed_dictionaries(
    {"event": st.sampled_from(ZADARMA_EVENTS)}, optional={k: TEXT for k in ZADARMA_KEYS}
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["number", "x"]), inner, max_size=2)
    ),
    max_leaves=10,
)
MANGO_KEYS = st.sampled_from(
    ["entry_id", "call_direction", "from", "to", "create_time", "talk_time", "end_time", "entry_result",
     "call_state", "line_number"]
)  # fmt: skip
OWN_KEYS = st.sampled_from(
    [
        "event",
        "call_id",
        "caller",
        "called",
        "direction",
        "started_at",
        "duration_s",
        "recording_url",
        "transcript",
    ]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["own", "zadarma", "mango", "raw"]),
    raw=st.binary(max_size=300),
    zadarma=ZADARMA_FIELDS,
    mango=st.dictionaries(MANGO_KEYS, JSON_VALUES, max_size=8),
    own_payload=st.dictionaries(OWN_KEYS, JSON_VALUES, max_size=9),
    provider=st.sampled_from([None, "zadarma", "mango", "mango/events/summary", "weird"]),
)
def test_random_input_gives_a_result_or_a_4xx(kind, raw, zadarma, mango, own_payload, provider):
    try:
        if kind == "own":
            result = own(own_payload)
        elif kind == "zadarma":
            signed = (
                ("pbx_call_id", "call_id_with_rec") if zadarma["event"] == "NOTIFY_RECORD" else END_SIGNED
            )
            result = zadarma_post(zadarma, signed)
        elif kind == "mango":
            result = mango_post(mango)
        else:
            query = {"provider": provider} if provider else {}
            result = send(raw, query=query, headers={"x-call-secret": CALL_SECRET, "signature": "x"})
    except WebhookError as exc:
        assert 400 <= exc.status < 500
    else:
        assert result.status == 200
        for message in result.messages:
            assert message.message_id.startswith("call:") and message.chat_id.startswith("+")
