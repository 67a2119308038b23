"""The daily digest at reminders.digest_at local time, to managers and seniors, exactly once."""

from __future__ import annotations

from datetime import timedelta

from leadflow import clock, wiring
from leadflow.adapters.store.conversation import NO_LEAD
from tests.support.builders import local, reminders, tick, use_business
from tests.support.day import lead, tuesday


def _digests(store) -> list[dict]:
    return [m for m in store.conversation.outbound(NO_LEAD) if m["kind"] == "digest"]


def test_digest_once_a_day_to_managers_with_the_days_figures(aws):
    clock.freeze(local(2026, 3, 17, 9))
    day = [
        *tuesday(),
        lead(7, "call", "hot", -2, 0),  # Monday 22:00, after Monday's digest: counted on Tuesday
        lead(8, "call", "hot", -4, 0),  # Monday 20:00: Monday's digest had it
    ]
    for each in day:
        assert aws.store.leads.create(each)
    first, second = reminders(), reminders()
    first.run(clock.now())

    # Two overlapping schedules run every minute around 21:00, one of them with a stale read
    clock.freeze(local(2026, 3, 17, 21))
    stale = aws.store.timers.due("remind", clock.now())
    first.run(clock.now())
    tick(first, local(2026, 3, 17, 21, 10), times=2)
    second.store.timers.due = lambda queue, now, limit=100: stale  # type: ignore[method-assign]
    try:
        second.run(clock.now())
    finally:
        del second.store.timers.due
    tick(second, local(2026, 3, 17, 21, 20), times=2)

    digests = _digests(aws.store)
    assert sorted(m["to"] for m in digests) == ["staff:elena", "staff:marina"]
    assert {m["sent_at"][:16] for m in digests} == {"2026-03-17T14:00"}
    assert digests[0]["text"].splitlines() == [
        "📊 Итоги 17.03",
        "Лидов: 7 (🔥 3 · 🌤 2 · ❄️ 2)",
        # channels by their labels and staff by their names (in the order of their ids)
        "По каналам: звонок 1, заявка с сайта 1, Instagram 1, Telegram 2, ВКонтакте 1, WhatsApp 1",
        "Пиковые часы: 10:00 (2), 12:00 (2), 18:00 (2)",
        "Первый ответ: медиана 20 с, p90 36 с",
        "Записано: 3, подтвердили: 1, не пришли: 1",
        "Нарушений SLA: 1",
        "Нагрузка: Анна 2, Катя 1, Ольга 1",
    ]

    # The next evening: one more digest each, for Wednesday
    tick(first, local(2026, 3, 18, 21, 5), step=timedelta(minutes=5), times=2)
    assert len(_digests(aws.store)) == 4
    assert sum("Итоги 18.03" in m["text"] for m in _digests(aws.store)) == 2


def test_digest_time_is_configurable(aws, monkeypatch):
    clock.freeze(local(2026, 3, 17, 9))
    business = wiring.business().model_copy(deep=True)
    business.reminders.digest_at = "19:30"
    use_business(monkeypatch, business)
    tick(reminders(), local(2026, 3, 17, 20), step=timedelta(minutes=5))
    assert [m["sent_at"][:16] for m in _digests(aws.store)] == ["2026-03-17T12:30"] * 2
