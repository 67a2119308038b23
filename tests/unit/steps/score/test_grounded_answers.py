"""With an LLM configured, its answers to questions come from the business's facts only: the facts are
in its prompt, an answer that says a price or a promise they do not is never sent, and a question
neither it nor the knowledge answers goes to a person."""

from __future__ import annotations

import pytest

from leadflow import clock, wiring
from tests.fakes import openai_server as ai
from tests.support.builders import SATURDAY_11, message, only_lead, replies, score

HELLO = "Здравствуйте, Ира!"


@pytest.fixture
def llm(aws, monkeypatch):
    fake = ai.FakeOpenAI(ai.labels())
    with fake.serve() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        wiring.reset()
        yield fake


def test_the_llm_is_told_the_facts_and_its_answer_is_sent(aws, llm):
    clock.freeze(SATURDAY_11)
    llm.reset(ai.labels(intent="question", answer="Чистка лица стоит 3 000 ₽ и длится полтора часа."))
    score(aws, message(1, "чистка лица почём нынче и долго ли?"))
    assert replies(aws)[-1]["text"] == f"{HELLO} Чистка лица стоит 3 000 ₽ и длится полтора часа."
    prompt = llm.bodies[0]["messages"][0]["content"]
    assert "Facts (the only facts you may tell the client):" in prompt
    assert "- Чистка лица: 3\u202f000\u00a0₽, 1,5\u00a0часа (90 min)" in prompt
    assert llm.bodies[0]["response_format"]["json_schema"]["schema"]["required"][-1] == "answer"


def test_an_invented_price_is_never_sent(aws, llm):
    clock.freeze(SATURDAY_11)
    llm.reset(ai.labels(intent="question", service="manicure", answer="Маникюр сегодня всего 990 ₽!"))
    score(aws, message(1, "сколько стоит маникюр?"))
    # the catalog's price instead, as the offline engine says it
    assert replies(aws)[-1]["text"] == f"{HELLO} Маникюр — 1\u202f200\u00a0₽, 1\u00a0час. Записать вас?"


def test_an_invented_promise_with_nothing_to_fall_back_on_goes_to_a_person(aws, llm):
    clock.freeze(SATURDAY_11)
    llm.reset(ai.labels(intent="question", answer="Да, для новых клиентов скидка 20%!"))
    score(aws, message(1, "а скидки для новых клиентов бывают?"))
    assert replies(aws)[-1]["text"] == f"{HELLO} Уточню у администратора и вернусь с ответом."
    assert only_lead(aws).question == "а скидки для новых клиентов бывают?"


def test_a_question_the_llm_cannot_answer_from_the_facts_goes_to_a_person(aws, llm):
    clock.freeze(SATURDAY_11)
    llm.reset(ai.labels(intent="question", answer=None))
    score(aws, message(1, "у вас мастера с медицинским образованием?"))
    assert replies(aws)[-1]["text"] == f"{HELLO} Уточню у администратора и вернусь с ответом."
    assert only_lead(aws).question == "у вас мастера с медицинским образованием?"
