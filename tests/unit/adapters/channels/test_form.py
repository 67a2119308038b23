"""Website forms and chatbot builders: events/form/*.json and hand-made posts through handle_webhook."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow import clock
from leadflow.adapters.channels.base import WebhookError, WebhookRequest, WebhookResult
from leadflow.adapters.channels.form import handle_webhook
from leadflow.domain.models import BuilderRef

EVENTS = Path(__file__).resolve().parents[4] / "events" / "form"
FORM_SECRET = "dev-form-secret"
URLENCODED = "application/x-www-form-urlencoded"


def request_from_event(path: Path) -> WebhookRequest:
    return WebhookRequest.from_api_gateway(json.loads(path.read_text(encoding="utf-8")))


def post(
    body: bytes | str | dict,
    *,
    content_type: str | None = "application/json",
    secret: str | None = FORM_SECRET,
    query: dict | None = None,
    method: str = "POST",
) -> WebhookResult:
    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False)
    headers = {}
    if content_type:
        headers["content-type"] = content_type
    if secret is not None:
        headers["x-form-secret"] = secret
    raw = body.encode() if isinstance(body, str) else body
    return handle_webhook(WebhookRequest(method, "form", headers, query or {}, raw))


@pytest.fixture(autouse=True)
def _form_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORM_SECRET", FORM_SECRET)


@pytest.fixture
def frozen() -> None:
    clock.freeze(datetime(2026, 3, 2, 7, 0, tzinfo=UTC))


# --------------------------------------------------------------------------- fixtures


def test_every_form_event_is_accepted():
    files = sorted(EVENTS.glob("*.json"))
    assert len(files) >= 5
    for path in files:
        result = handle_webhook(request_from_event(path))
        assert result.status == 200, path.name
        if path.name == "tilda_test.json":
            assert result.messages == []
        else:
            assert len(result.messages) == 1, path.name
            assert result.messages[0].channel == "form"


def test_tilda_urlencoded_submission_becomes_one_readable_message():
    (message,) = handle_webhook(request_from_event(EVENTS / "tilda_urlencoded.json")).messages

    assert message.message_id == "form:7310245:3145123701"
    assert message.chat_id == "+79161234567"
    assert message.contact.name == "Анна"
    assert message.contact.phone == "+79161234567"
    assert message.text.splitlines() == [
        "Имя: Анна",
        "Телефон: +79161234567",
        "Email: anna.k@example.ru",
        "Услуга: Маникюр с покрытием",
        "Комментарий: Можно в субботу около 12?",
        "Промокод: ВЕСНА10",
    ]
    # UTM from Tilda's TILDAUTM cookie; the cookie jar itself stays out of the text
    assert (message.utm.source, message.utm.medium, message.utm.campaign) == (
        "yandex",
        "cpc",
        "manicure_spring",
    )
    assert message.source == "yandex"
    assert message.promo == "ВЕСНА10"
    assert "COOKIES" not in message.text and "_ym_uid" not in message.text


def test_tilda_connection_test_is_answered_ok_and_takes_nothing():
    result = handle_webhook(request_from_event(EVENTS / "tilda_test.json"))
    assert (result.status, result.body, result.messages) == (200, "ok", [])
    assert result.note == "form builder connection test"


def test_site_json_with_nested_utm_and_promo():
    (message,) = handle_webhook(request_from_event(EVENTS / "site_json.json")).messages
    assert message.contact.phone == "+79167654321"  # "8 916 765 43 21" read as a Russian number
    assert message.utm.model_dump(exclude_none=True) == {
        "source": "vk",
        "medium": "post",
        "campaign": "march_colour",
    }
    assert message.source == "vk"
    assert message.promo == "FRIEND500"
    assert message.page_url == "https://salon.example.ru/price?utm_source=vk&utm_medium=post"
    assert "Услуга: стрижка и окрашивание" in message.text
    assert message.message_id.startswith("form:hash:")


def test_manychat_contact_data():
    (message,) = handle_webhook(request_from_event(EVENTS / "manychat.json")).messages
    assert message.contact.name == "Мария Смирнова"
    assert message.contact.phone == "+79031234567"
    assert message.contact.channel_user_id == "1234567890123456"
    assert "Услуга: педикюр" in message.text  # from custom_fields
    assert "Комментарий: Сколько стоит педикюр? Хочу завтра" in message.text
    assert "Филиал: Тверская" in message.text
    assert "Email" not in message.text  # optin_email: false is a flag, not an address
    # ManyChat's id is the subscriber: using it as a submission id would swallow every later post
    assert message.message_id.startswith("form:hash:")
    assert message.received_at == datetime(2026, 3, 2, 7, 14, 58, tzinfo=UTC)
    # Answered in ManyChat: the subscriber writes from Facebook Messenger (no ig_id, no whatsapp_phone)
    assert message.builder == BuilderRef(name="manychat", user_id="1234567890123456")


@pytest.mark.parametrize(
    ("extra", "channel"),
    [({"ig_id": 1789654321, "ig_username": "maria"}, "instagram"), ({"whatsapp_phone": "+79031234567"}, "whatsapp"),
     ({"telegram_id": 55501}, "telegram"), ({"ig_id": None, "whatsapp_phone": None}, None)],
)  # fmt: skip
def test_a_manychat_subscriber_is_answered_in_the_messenger_they_write_from(extra, channel):
    body = {
        "id": "77001",
        "live_chat_url": "https://manychat.com/x",
        "name": "Мария",
        "last_input_text": "Привет",
        **extra,
    }
    (message,) = post(json.dumps(body), content_type="application/json").messages
    assert message.builder == BuilderRef(name="manychat", user_id="77001", channel=channel)


def test_a_plain_site_form_has_no_builder():
    body = urlencode({"name": "Анна", "phone": "+79161234567", "id": "form-3"})
    (message,) = post(body, content_type=URLENCODED).messages
    assert message.builder is None


def test_chatfuel_attributes_with_spaces_in_names():
    (message,) = handle_webhook(request_from_event(EVENTS / "chatfuel.json")).messages
    assert message.contact.name == "Ирина Петрова"
    assert message.contact.phone == "+79037654321"
    assert message.contact.channel_user_id == "2345678901234567"
    assert "Комментарий: Нужна чистка лица, есть окна в пятницу?" in message.text
    assert message.builder == BuilderRef(name="chatfuel", user_id="2345678901234567")


# --------------------------------------------------------------------------- auth


def test_secret_in_header_or_query_is_accepted():
    body = urlencode({"name": "Анна", "phone": "+79161234567"})
    assert post(body, content_type=URLENCODED).messages
    assert post(body, content_type=URLENCODED, secret=None, query={"secret": FORM_SECRET}).messages


@pytest.mark.parametrize("given_secret", ["wrong", "", None])
def test_wrong_or_missing_secret_is_refused(given_secret):
    with pytest.raises(WebhookError) as err:
        post({"name": "Анна"}, secret=given_secret)
    assert err.value.status == 403


def test_unset_secret_refuses_even_a_matching_request(monkeypatch):
    monkeypatch.delenv("FORM_SECRET")
    with pytest.raises(WebhookError) as err:
        post({"name": "Анна"})
    assert err.value.status == 403
    assert "not configured" in err.value.reason


def test_only_post_is_accepted():
    with pytest.raises(WebhookError) as err:
        post("", method="GET")
    assert err.value.status == 405


# --------------------------------------------------------------------------- fields


@pytest.mark.parametrize(
    ("fields", "name", "phone"),
    [
        ({"Имя": "Анна", "Телефон": "+7 916 123-45-67"}, "Анна", "+79161234567"),
        ({"FIO": "Петров Иван", "tel": "89161234567"}, "Петров Иван", "+79161234567"),
        ({"client_name": "Олег", "phone_number": "79161234567"}, "Олег", "+79161234567"),
        ({"first_name": "Ира", "last_name": "Ким", "Mobile": "9161234567"}, "Ира Ким", "+79161234567"),
        ({"ФИО": "Сидорова Анна", "PHONE": "+44 7911 123456"}, "Сидорова Анна", "+447911123456"),
    ],
)
def test_common_field_spellings(fields, name, phone):
    (message,) = post(urlencode(fields), content_type=URLENCODED).messages
    assert (message.contact.name, message.contact.phone, message.chat_id) == (name, phone, phone)


def test_russian_and_english_comment_service_promo_page_fields():
    fields = {
        "имя": "Анна",
        "услуга": "брови",
        "сообщение": "на завтра",
        "промокод": "SALE",
        "referer": "https://salon.example.ru/?utm_source=google&utm_campaign=brows",
    }
    (message,) = post(fields).messages
    assert "Услуга: брови" in message.text and "Комментарий: на завтра" in message.text
    assert message.promo == "SALE"
    assert message.page_url.startswith("https://salon.example.ru/")
    assert (message.utm.source, message.utm.campaign) == ("google", "brows")  # from the page's query


def test_invalid_phone_stays_out_of_contact_but_in_the_text():
    (message,) = post({"name": "Анна", "phone": "12-34", "email": "anna@example.ru"}).messages
    assert message.contact.phone is None
    assert "Телефон: 12-34" in message.text
    assert message.chat_id == "anna@example.ru"


def test_name_only_submission_gets_a_stable_anonymous_chat_id(frozen):
    first = post({"name": "Анна", "comment": "перезвоните"}).messages[0]
    again = post({"name": "Анна", "comment": "перезвоните"}).messages[0]
    assert first.chat_id.startswith("anonymous:")
    assert first.chat_id == again.chat_id


def test_repost_without_submission_id_dedupes_and_other_content_does_not(frozen):
    fields = {"name": "Ольга", "phone": "+79167654321", "service": "стрижка"}
    first = post(fields).messages[0]
    repost = post(urlencode(fields), content_type=URLENCODED).messages[0]
    other = post({**fields, "service": "окрашивание"}).messages[0]
    assert first.message_id == repost.message_id
    assert other.message_id != first.message_id


def test_same_content_on_another_day_is_a_new_message():
    fields = {"name": "Ольга", "phone": "+79167654321"}
    today = post({**fields, "submitted_at": "2026-03-02T10:00:00+03:00"}).messages[0]
    next_day = post({**fields, "submitted_at": "2026-03-03T10:00:00+03:00"}).messages[0]
    assert today.message_id != next_day.message_id


def test_item6_same_content_is_one_submission_within_the_repeat_window_only(frozen):
    fields = {"name": "Ольга", "phone": "+79167654321", "id": "contact-form"}
    first = post(fields).messages[0]
    clock.advance(timedelta(seconds=3))
    double_click = post(fields).messages[0]
    clock.advance(timedelta(minutes=30))
    later = post(fields).messages[0]
    assert double_click.message_id == first.message_id
    assert later.message_id != first.message_id


def test_item6_a_retry_carrying_the_builders_own_time_dedupes_however_late():
    fields = {"name": "Ольга", "phone": "+79167654321", "submitted_at": "2026-03-02T10:00:00+03:00"}
    first = post(fields).messages[0]
    clock.freeze(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    retry = post(fields).messages[0]
    assert retry.message_id == first.message_id


def test_submission_id_spellings_make_the_message_id():
    assert post({"name": "A", "submission_id": "s-1"}).messages[0].message_id == "form:s-1"
    assert post({"name": "A", "request_id": "r-9"}).messages[0].message_id == "form:r-9"


def test_item6_a_field_named_id_is_no_submission_id():
    # a site's hidden "id" names the form (or anything else): it is content, not the submission
    first = post({"name": "A", "id": 42}).messages[0]
    second = post({"name": "B", "id": 42}).messages[0]
    assert first.message_id.startswith("form:hash:")
    assert first.message_id != second.message_id


def test_builder_time_is_used_when_it_has_a_zone():
    message = post({"name": "A", "submitted_at": "2026-03-02T10:00:00+03:00"}).messages[0]
    assert message.received_at == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    unix = post({"name": "A", "timestamp": 1772434800}).messages[0]
    assert unix.received_at == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("sent", ["2026-03-02T10:00:00", "tomorrow", "future"])
def test_unusable_builder_time_falls_back_to_now(sent):
    if sent == "future":
        sent = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    before = datetime.now(UTC)
    message = post({"name": "A", "submitted_at": sent}).messages[0]
    assert before <= message.received_at <= datetime.now(UTC)


def test_content_type_is_sniffed_when_missing_or_generic():
    assert post({"name": "Анна"}, content_type=None).messages[0].contact.name == "Анна"
    assert post("name=%D0%90%D0%BD%D0%BD%D0%B0", content_type="text/plain").messages[0].contact.name == "Анна"


def test_checkbox_lists_and_unknown_fields_reach_the_text():
    (message,) = post({"name": "Анна", "Дата": "15.03", "extras": ["снятие", "дизайн"]}).messages
    assert "Дата: 15.03" in message.text
    assert "Extras: снятие, дизайн" in message.text


# --------------------------------------------------------------------------- bad input


def test_no_usable_field_is_400_with_a_reason():
    with pytest.raises(WebhookError) as err:
        post(urlencode({"tranid": "1:2", "formid": "form1", "utm_source": "x"}), content_type=URLENCODED)
    assert err.value.status == 400
    assert "no usable field" in err.value.reason


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"\xff\xfe\x00", URLENCODED),
        (b"", URLENCODED),
        (b"just words", None),
        (b'"a string"', "application/json"),
    ],
)
def test_malformed_bodies_are_400(body, content_type):
    with pytest.raises(WebhookError) as err:
        post(body, content_type=content_type)
    assert err.value.status == 400


def test_reason_for_bad_input_holds_no_personal_data():
    with pytest.raises(WebhookError) as err:
        post(b'{"phone": "+79161234567", ', content_type="application/json")
    assert "7916" not in err.value.reason


FIELD_NAMES = st.sampled_from(
    ["name", "Phone", "телефон", "comment", "utm", "utm_source", "tranid", "id", "custom_fields", "COOKIES",
     "submitted_at", "test", "email", "promo", "page_url", "last_name", "first name", "x"]
)  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(FIELD_NAMES | st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
BODIES = st.one_of(
    st.binary(max_size=400),
    st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=8).map(lambda d: json.dumps(d).encode()),
    st.dictionaries(FIELD_NAMES, st.text(max_size=40), max_size=8).map(lambda d: urlencode(d).encode()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=BODIES,
    content_type=st.sampled_from([None, "application/json", URLENCODED, "text/plain", "multipart/form-data"]),
    secret=st.sampled_from([FORM_SECRET, FORM_SECRET, "nope", None]),
    method=st.sampled_from(["POST", "POST", "GET"]),
)
def test_random_input_gives_a_result_or_a_4xx(body, content_type, secret, method):
    try:
        result = post(body, content_type=content_type, secret=secret, method=method)
    except WebhookError as exc:
        assert 400 <= exc.status < 500
    else:
        assert result.status == 200
        for message in result.messages:
            assert message.message_id.startswith("form:") and message.chat_id
