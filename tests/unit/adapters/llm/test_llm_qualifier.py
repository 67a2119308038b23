from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from leadflow.adapters.llm import LlmQualifier, LlmUnavailable, make_client
from tests.fakes.http import FakeServer, Response
from tests.fakes.openai_server import (
    FakeOpenAI,
    chat_completion,
    fenced,
    labels,
    rate_limited,
    refused,
    server_error,
    slow,
    truncated,
)
from tests.support.llm import RECEIVED, SERVICES, TZ

TEXT = "Здравствуйте! Можно на массаж спины завтра в 6 вечера? Меня зовут Ирина, 8 (913) 840-27-65"


def _usage_total(answer: Response) -> int:
    assert isinstance(answer.body, dict)
    return int(answer.body["usage"]["total_tokens"])


def _unavailable(engine: LlmQualifier, text: str = TEXT) -> LlmUnavailable:
    with pytest.raises(LlmUnavailable) as caught:
        engine.qualify(text, RECEIVED, "telegram")
    return caught.value


# --------------------------------------------------------------------------- answers that work


def test_structured_answer_becomes_a_qualification(llm):
    # Given a model that fills the schema
    answer = labels(
        intent="booking", service="massage", preferred_date="2026-03-13", preferred_time="18:00",
        name="Ирина", phone="8 (913) 840-27-65",
    )  # fmt: skip
    with llm(answer) as (engine, fake, _):
        # When a message is qualified
        result = engine.qualify(TEXT, RECEIVED, "telegram")

    # Then every field comes through, the phone in E.164, tomorrow makes it hot
    assert result.intent == "booking"
    assert result.service == "massage"
    assert result.preferred_date == date(2026, 3, 13)
    assert result.preferred_time == "18:00"
    assert result.name == "Ирина"
    assert result.phone == "+79138402765"
    assert result.temperature == "hot"
    assert result.engine == "llm"
    assert result.tokens == _usage_total(answer)
    assert len(fake.bodies) == 1


def test_request_asks_for_strict_json_schema_with_catalog_ids(llm):
    with llm(labels(intent="question")) as (engine, fake, server):
        engine.qualify(TEXT, RECEIVED, "telegram")

    body = fake.bodies[0]
    assert server.requests[0].headers["authorization"] == "Bearer sk-test"
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == 0
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"])
    assert "temperature" not in schema["properties"], "temperature is ours, not the model's"
    service_enum = schema["properties"]["service"]["anyOf"][0]["enum"]
    assert service_enum == [s.id for s in SERVICES]


def test_prompt_holds_catalog_today_and_the_message(llm):
    with llm(labels(intent="question")) as (engine, fake, _):
        engine.qualify(TEXT, RECEIVED, "site_form")

    system, user = fake.bodies[0]["messages"]
    assert system["role"] == "system"
    for service in SERVICES:
        assert service.id in system["content"]
        assert service.name in system["content"]
        assert all(keyword in system["content"] for keyword in service.keywords)
    assert "Today: Thu 2026-03-12" in user["content"]
    assert "Fri 2026-03-20" in user["content"], "next week's dates are there for 'в следующую пятницу'"
    assert "site_form" in user["content"]
    assert TEXT in user["content"]
    assert TEXT not in system["content"], "the system prompt stays constant so providers can cache it"


def test_today_is_the_received_date_in_the_business_time_zone(llm):
    # 20:30 UTC on Thursday is 03:30 on Friday in Krasnoyarsk: "tomorrow" there is Saturday
    received_utc = datetime(2026, 3, 12, 20, 30, tzinfo=UTC)
    with llm(labels(intent="booking", service="manicure", preferred_date="2026-03-14")) as (engine, fake, _):
        result = engine.qualify("маникюр на завтра", received_utc)

    assert "Today: Fri 2026-03-13, 03:30" in fake.bodies[0]["messages"][1]["content"]
    assert result.temperature == "hot"


def test_naive_received_at_is_read_in_the_business_time_zone(llm):
    with llm(labels(intent="question")) as (engine, fake, _):
        engine.qualify("сколько стоит массаж?", datetime(2026, 3, 15, 23, 50))

    assert "Today: Sun 2026-03-15, 23:50" in fake.bodies[0]["messages"][1]["content"]


def test_answer_in_json_fences_from_an_endpoint_that_ignores_response_format(llm):
    answer = fenced(labels(intent="booking", service="manicure", preferred_date="2026-03-20"))
    with llm(answer) as (engine, _, _):
        result = engine.qualify("маникюр в следующую пятницу", RECEIVED)

    assert (result.service, result.preferred_date, result.temperature) == (
        "manicure",
        date(2026, 3, 20),
        "warm",
    )


def test_endpoint_rejecting_json_schema_is_asked_again_without_it(llm):
    # Given an endpoint that answers 400 to response_format json_schema
    with llm(labels(intent="question", service="massage"), rejects_response_format=True) as (
        engine,
        fake,
        server,
    ):
        first = engine.qualify("сколько стоит массаж?", RECEIVED)
        second = engine.qualify("а маникюр?", RECEIVED)

    # Then the first message is asked again without it, and later messages skip it from the start
    assert first.service == "massage" and second.intent == "question"
    assert len(server.requests) == 3
    assert "response_format" not in fake.bodies[0]
    assert "response_format" not in fake.bodies[1]


def test_every_service_and_the_window_come_through(llm):
    # Given a model that lists two services and a lower bound
    answer = labels(
        intent="booking", service="massage", services=["massage", "manicure"], preferred_date="2026-03-13",
        preferred_time="18:00", preferred_window="after 18:00",
    )  # fmt: skip
    with llm(answer) as (engine, fake, _):
        result = engine.qualify("массаж и маникюр завтра после 18", RECEIVED, "telegram")

    # Then both services and the window are on the qualification, and the schema asked for them
    assert (result.service, result.services) == ("massage", ["massage", "manicure"])
    assert (result.preferred_time, result.preferred_window) == ("18:00", "after 18:00")
    schema = fake.bodies[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["services"]["items"]["enum"] == [s.id for s in SERVICES]
    assert {"services", "preferred_window"} <= set(schema["required"])


def test_an_answer_without_the_newer_fields_still_reads(llm):
    with llm(labels(intent="booking", service="massage")) as (engine, _, _):
        result = engine.qualify("массаж", RECEIVED)
    assert (result.services, result.preferred_window) == (["massage"], None)


def test_services_alone_give_the_service_and_a_window_hour_is_padded(llm):
    answer = labels(intent="booking", service=None, services=["manicure"], preferred_window="Before 9:00")
    with llm(answer) as (engine, _, _):
        result = engine.qualify("маникюр до 9", RECEIVED)
    assert (result.service, result.services, result.preferred_window) == (
        "manicure",
        ["manicure"],
        "before 09:00",
    )


def test_hour_without_leading_zero_is_padded(llm):
    with llm(labels(intent="booking", service="massage", preferred_time="9:30")) as (engine, _, _):
        assert engine.qualify("массаж к 9:30", RECEIVED).preferred_time == "09:30"


# --------------------------------------------------------------------------- our rules, not the model's


@pytest.mark.parametrize(
    ("intent", "days_ahead", "urgent", "expected"),
    [
        ("booking", 0, False, "hot"),
        ("booking", 1, False, "hot"),
        ("booking", 2, False, "hot"),
        ("booking", 3, False, "warm"),
        ("booking", None, False, "warm"),
        ("booking", None, True, "hot"),
        ("booking", 10, True, "hot"),
        ("booking", -1, False, "warm"),
        ("question", 0, False, "cold"),
        ("question", None, True, "cold"),
        ("not_target", 0, True, "cold"),
    ],
)
def test_temperature_is_computed_by_our_rule(llm, intent, days_ahead, urgent, expected):
    wanted = None if days_ahead is None else (RECEIVED.date() + timedelta(days=days_ahead)).isoformat()
    # the model also sends its own opinion of the temperature: it must not count
    model_says = {"hot": "cold", "warm": "hot", "cold": "hot"}[expected]
    answer = labels(intent=intent, service=None, preferred_date=wanted, urgent=urgent, temperature=model_says)
    with llm(answer) as (engine, _, _):
        result = engine.qualify("текст", RECEIVED)

    assert result.temperature == expected
    assert result.urgent is (urgent and intent == "booking")


def test_not_target_keeps_contacts_and_drops_the_rest(llm):
    answer = labels(
        intent="not_target", service="massage", preferred_date="2026-03-12", preferred_time="10:00",
        name="Олег", phone="+7 800 555-35-35", services=["massage"], preferred_window="morning",
    )  # fmt: skip
    with llm(answer) as (engine, _, _):
        result = engine.qualify("Продвижение салонов, звоните 8-800-555-35-35, Олег", RECEIVED)

    assert (result.service, result.preferred_date, result.preferred_time) == (None, None, None)
    assert (result.services, result.preferred_window) == ([], None)
    assert result.temperature == "cold"
    assert (result.name, result.phone) == ("Олег", "+78005553535")


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("8 913 840 27 65", "+79138402765"),
        ("+7 (391) 205-05-05", "+73912050505"),
        ("9138402765", "+79138402765"),
        ("79138402765", "+79138402765"),
        ("1111111111", None),
        ("+7 (111) 111-11-11", None),
        ("12345", None),
        ("звоните", None),
        ("", None),
    ],
)
def test_phone_is_normalised_to_e164_or_dropped(llm, written, expected):
    with llm(labels(intent="question", phone=written)) as (engine, _, _):
        assert engine.qualify("телефон в тексте", RECEIVED).phone == expected


# --------------------------------------------------------------------------- answers that do not work


def test_rate_limit_is_unavailable_with_retry_after(llm):
    with llm(rate_limited(retry_after_s=20)) as (engine, _, server):
        failure = _unavailable(engine)

    assert failure.reason == "rate_limited"
    assert failure.retry_after == 20
    assert len(server.requests) == 1, "no SDK retries: the budget is ours"


def test_server_error_is_unavailable_without_retry(llm):
    with llm(server_error()) as (engine, _, server):
        assert _unavailable(engine).reason == "server_error"
    assert len(server.requests) == 1


def test_slow_answer_gives_up_within_the_budget(llm):
    budget = 0.6
    with llm(slow(labels(intent="question"), delay_s=3.0), budget_s=budget) as (engine, _, _):
        started = time.monotonic()
        failure = _unavailable(engine)
        elapsed = time.monotonic() - started

    assert failure.reason == "timeout"
    assert elapsed < budget + 0.3, f"took {elapsed:.2f}s on a {budget}s budget"


def test_answer_within_the_budget_is_taken(llm):
    with llm(slow(labels(intent="question"), delay_s=0.2), budget_s=1.0) as (engine, _, _):
        assert engine.qualify("вопрос", RECEIVED).intent == "question"


def test_truncated_answer_is_unavailable(llm):
    answer = truncated(labels(intent="booking", service="massage", name="Ирина"))
    with llm(answer) as (engine, _, _):
        failure = _unavailable(engine)
    assert failure.reason == "truncated"
    assert failure.tokens == _usage_total(answer)


def test_refusal_is_unavailable(llm):
    with llm(refused()) as (engine, _, _):
        assert _unavailable(engine).reason == "refusal"


def test_prose_instead_of_json_is_unavailable(llm):
    with llm(chat_completion("Клиент хочет записаться на массаж завтра.")) as (engine, _, _):
        assert _unavailable(engine).reason == "invalid_json"


def test_empty_content_is_unavailable(llm):
    with llm(chat_completion("")) as (engine, _, _):
        assert _unavailable(engine).reason == "empty_answer"


@pytest.mark.parametrize(
    ("answer", "bad_field"),
    [
        (labels(intent="maybe"), "intent"),
        (labels(service="pedicure"), "service"),  # not in this business's catalog
        (labels(service="Массаж"), "service"),
        (labels(preferred_date="13.03.2026"), "preferred_date"),
        (labels(preferred_date="2026-02-30"), "preferred_date"),
        (labels(preferred_time="25:00"), "preferred_time"),
        (labels(preferred_time="вечером"), "preferred_time"),
        (labels(services=["massage", "pedicure"]), "services"),  # not in this business's catalog
        (labels(preferred_window="вечером"), "preferred_window"),
        (labels(preferred_window="after 25:00"), "preferred_window"),
        (labels(urgent="very"), "urgent"),  # type: ignore[arg-type]
        (chat_completion(json.dumps({"intent": "booking"})), "service"),
        (chat_completion(json.dumps(["booking"])), "(root)"),
    ],
)
def test_schema_invalid_answer_is_unavailable(llm, answer, bad_field):
    with llm(answer) as (engine, _, _):
        failure = _unavailable(engine)
    assert failure.reason.startswith("schema_invalid:")
    assert bad_field in failure.reason.split(":", 1)[1].split(",")


def test_wrong_api_key_is_unavailable(llm):
    with llm(labels()) as (_, fake, server):
        client = make_client("sk-wrong", f"{server.url}/v1", timeout_s=1.0)
        engine = LlmQualifier(client, "gpt-4o-mini", SERVICES, TZ, budget_s=1.0)
        assert _unavailable(engine).reason == "auth_error"
    assert fake.bodies == []


def test_connection_refused_is_unavailable():
    # a port that was just free and is closed again: nothing listens there
    probe = FakeServer(lambda request: Response())
    url = probe.url
    probe._server.server_close()
    engine = LlmQualifier(make_client("sk-test", f"{url}/v1", 1.0), "gpt-4o-mini", SERVICES, TZ, budget_s=1.0)

    assert _unavailable(engine).reason == "connection_error"


def test_unexpected_client_failure_is_still_unavailable():
    class BrokenCompletions:
        def create(self, **kwargs):
            raise KeyError("not an OpenAI error")

    class BrokenClient:
        class chat:
            completions = BrokenCompletions()

    engine = LlmQualifier(BrokenClient(), "m", SERVICES, TZ)  # type: ignore[arg-type]
    assert _unavailable(engine).reason == "unexpected:KeyError"


def test_reasons_never_carry_message_text(llm):
    scripts = [
        rate_limited(),
        server_error(),
        refused(),
        chat_completion("not json " + TEXT),
        labels(service=TEXT),
    ]
    for answer in scripts:
        with llm(answer) as (engine, _, _):
            failure = _unavailable(engine)
        assert "Ирина" not in str(failure) and "913" not in str(failure)


def test_fake_refuses_a_non_strict_schema():
    # the fake enforces what the real API enforces, so the engine's schema is really checked
    fake = FakeOpenAI(labels())
    with fake.serve() as server:
        client = make_client("sk-test", f"{server.url}/v1", 1.0)
        from openai import BadRequestError

        with pytest.raises(BadRequestError):
            client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "x"}],
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": "x",
                        "strict": True,
                        "schema": {"type": "object", "properties": {"a": {}}},
                    },
                },
            )
