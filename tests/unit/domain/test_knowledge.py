"""Which knowledge topic a question asks about (by lemmas: any word form), and the LLM's answers kept
to the business's facts."""

from __future__ import annotations

import pytest

from leadflow.domain.knowledge import asked_topics, asks_something, facts_text, is_grounded
from tests.support.builders import business

CFG = business("""
    timezone: Asia/Krasnoyarsk
    services:
      - {id: manicure, name: Маникюр, price: 1200, duration_min: 60, keywords: [маникюр]}
      - {id: pedicure, name: Педикюр, price: 1800, duration_min: 75, keywords: [педикюр]}
    branches:
      - {id: center, name: Центр, address: "ул. Ленина, 5", parking: Парковка во дворе.}
    knowledge:
      payment: Принимаем наличные, карты и СБП.
      qa:
        - questions: [подарочный сертификат]
          answer: Да, сертификаты на любую сумму.
        - questions: [где оставить коляску]
          answer: Коляску можно оставить у администратора.
""")


def kinds(text: str) -> list[str]:
    return [t.kind for t in asked_topics(text, CFG)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("где вы находитесь", ["address"]),
        ("Подскажите адрес", ["address"]),
        ("как к вам добраться?", ["address"]),
        ("есть парковка?", ["parking"]),
        ("где припарковаться?", ["address", "parking"]),  # both answered: where and where to park
        ("до скольки работаете", ["hours"]),
        ("вы завтра работаете?", ["hours"]),
        ("какой у вас график?", ["hours"]),
        ("можно картой?", ["payment"]),
        ("оплатить наличными можно?", ["payment"]),
        ("сколько стоит педикюр?", ["price"]),
        ("какая цена на маникюр", ["price"]),
        ("сколько длится маникюр?", ["duration"]),
        ("что взять с собой?", ["what_to_bring"]),
        ("а если отменю запись, штраф есть?", ["cancellation"]),
        ("where are you located?", ["address"]),
        ("how much is a manicure?", ["price"]),
        ("do you take cards?", ["payment"]),
    ],
)
def test_a_question_finds_its_topic_in_any_word_form(text, expected):
    assert kinds(text) == expected


def test_the_owners_answer_is_found_in_other_word_forms_and_order():
    topics = asked_topics("А сертификаты подарочные у вас есть?", CFG)
    assert [(t.kind, t.qa) for t in topics] == [("qa", 0)]


def test_the_owners_answer_wins_over_a_topic_on_the_same_words():
    # «где» would be the address; the owner's answer about the pram covers those words
    assert kinds("где можно оставить коляску?") == ["qa"]


def test_topics_come_in_the_order_they_are_asked():
    assert kinds("можно картой? и где вы находитесь?") == ["payment", "address"]


def test_words_that_only_look_like_a_question_are_not_one():
    assert kinds("хочу на маникюр где-то в 5 после работы") == []
    assert not asks_something("хочу на маникюр завтра в 15")
    assert asks_something("адрес скиньте") and asks_something("маникюр завтра?")


def test_the_llm_is_given_every_fact_and_only_those():
    facts = facts_text(CFG)
    assert "Маникюр: 1\u202f200\u00a0₽, 1\u00a0час (60 min)" in facts
    assert "ул. Ленина, 5" in facts and "Парковка во дворе." in facts and "пн–вс 10:00–20:00" in facts
    assert "Принимаем наличные, карты и СБП." in facts and "Cancellation: unknown" in facts
    assert "Q: подарочный сертификат A: Да, сертификаты на любую сумму." in facts


@pytest.mark.parametrize(
    ("answer", "grounded"),
    [
        ("Маникюр стоит 1 200 ₽ и длится час.", True),
        ("Маникюр — 1200 рублей.", True),
        ("Мы работаем с 10:00 до 20:00, в воскресенье, 15 марта, тоже.", True),
        ("Маникюр стоит 990 ₽.", False),  # a price the config does not have
        ("Для вас скидка на маникюр!", False),  # a promise nobody made
        ("Работаем до 22:00.", False),
        ("Маникюр займёт 20 минут.", False),  # a duration nobody gave
        ("Да, на 18 марта есть свободные окна.", False),  # a free slot nobody checked
        ("18 марта работаем с 10:00 до 20:00.", True),  # a date is no fact to check
        ("Да, можно на 17:30, как вы просили.", True),  # the client's own time
    ],
)
def test_an_llm_answer_says_no_number_or_promise_the_facts_do_not(answer, grounded):
    assert is_grounded(answer, facts_text(CFG), client_text="можно на 17:30?") is grounded
