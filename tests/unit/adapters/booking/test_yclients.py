"""The YCLIENTS adapter against a local stand-in speaking its documented JSON: free slots from
book_staff/book_times, book_check before book_record, 433 when the time was taken in YCLIENTS
between the offer and the pick, auth and rate-limit errors, and no double booking under load."""

from __future__ import annotations

import threading
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from leadflow.adapters.booking import BookingUnavailable, SlotTaken
from leadflow.adapters.booking.yclients import YclientsBooking, record_time
from leadflow.domain.models import Contact, Lead
from tests.fakes.http import FakeServer
from tests.fakes.yclients_server import FakeYclients
from tests.support.builders import business

MSK = ZoneInfo("Europe/Moscow")
CONFIG = """
timezone: Europe/Moscow
services:
  - {id: coloring, name: Окрашивание, group: hair, duration_min: 90, yclients_id: 331, keywords: [окрашивание]}
  - {id: consult, name: Консультация, keywords: [консультация]}
staff:
  - {id: olga, name: Ольга, skills: [hair], yclients_id: 6544}
  - {id: vera, name: Вера, skills: [hair], yclients_id: 6545}
booking: {enabled: true, system: yclients, yclients: {company_id: 555}}
"""
DAY = date(2026, 12, 5)
NOW = datetime(2026, 12, 5, 8, 0, tzinfo=MSK)


def lead(i: int = 1) -> Lead:
    return Lead(lead_id=f"L{i}", channel="telegram", chat_id="1", contact_id="c", service="coloring",
                contact=Contact(name="Анна", phone=f"+7913000{i:04d}"), received_at=NOW, last_message_at=NOW)  # fmt: skip


@pytest.fixture
def yclients():
    fake = FakeYclients(staff={6544: "Ольга", 6545: "Вера", 7000: "Незнакомка"}, services={331: 90})
    with FakeServer(fake.route) as server:
        client = YclientsBooking(
            business(CONFIG), requests.Session(), partner_token="partner-token", user_token="user-token",
            api_base=server.url,
        )  # fmt: skip
        yield fake, client, server


def test_free_slots_come_from_book_times_of_the_masters_the_config_knows(yclients) -> None:
    fake, client, server = yclients
    fake.take(6544, datetime(2026, 12, 5, 12, 0, tzinfo=MSK), 90)
    slots = client.free_slots(client.business.service("coloring"), DAY, NOW)
    olga = [f"{s.start:%H:%M}" for s in slots if s.master == "olga"]
    assert "10:00" in olga and "12:00" not in olga and "11:00" not in olga and "13:30" in olga
    assert {s.master for s in slots} == {"olga", "vera"}  # YCLIENTS' 7000 is nobody the config knows
    assert all(s.duration_min == 90 for s in slots)
    first = server.requests[0]
    assert first.path == "/api/v1/book_staff/555" and first.query["service_ids[]"] == "331"
    assert first.headers["authorization"] == "Bearer partner-token"
    assert first.headers["accept"] == "application/vnd.yclients.v2+json"
    assert client.free_slots(client.business.service("consult"), DAY, NOW) == []  # not in YCLIENTS


def test_a_pick_is_checked_then_booked_with_the_clients_phone_and_name(yclients) -> None:
    fake, client, server = yclients
    slot = next(
        s for s in client.free_slots(client.business.service("coloring"), DAY, NOW) if s.master == "vera"
    )
    booked = client.book(slot, lead(), NOW)
    (record,) = fake.live()
    assert (record.staff_id, record.service_ids, record.start, record.phone) == (
        6545,
        [331],
        slot.start,
        "79130000001",
    )
    assert booked.ref == str(record.record_id)
    paths = [r.path for r in server.requests[-2:]]
    assert paths == ["/api/v1/book_check/555", "/api/v1/book_record/555"]
    assert server.requests[-1].json()["api_id"] == "L1"


def test_a_time_taken_in_yclients_between_offer_and_pick_is_refused(yclients) -> None:
    fake, client, _ = yclients
    slot = next(
        s for s in client.free_slots(client.business.service("coloring"), DAY, NOW) if s.master == "olga"
    )
    fake.take(6544, slot.start, 30)  # the administrator books somebody at the desk
    assert not client.hold(slot, "L1", NOW)
    with pytest.raises(SlotTaken):
        client.book(slot, lead(), NOW)
    assert len(fake.live()) == 1


def test_cancel_and_read_a_record_need_the_user_token(yclients) -> None:
    fake, client, server = yclients
    slot = client.free_slots(client.business.service("coloring"), DAY, NOW)[0]
    booked = client.book(slot, lead(), NOW)
    record = client.record(booked.ref)
    assert record is not None and record_time(record, client.business) == slot.start
    assert server.requests[-1].headers["authorization"] == "Bearer partner-token, User user-token"
    client.cancel(lead().model_copy(update={"booking_ref": booked.ref}))
    assert fake.live() == []
    assert client.record("999") is None


def test_errors_are_told_apart(yclients) -> None:
    fake, client, _ = yclients
    fake.rate_limited = 1
    with pytest.raises(BookingUnavailable) as limited:
        client.free_slots(client.business.service("coloring"), DAY, NOW)
    assert limited.value.retryable and "429" in str(limited.value)
    client.partner_token = "wrong"
    with pytest.raises(BookingUnavailable) as refused:
        client.free_slots(client.business.service("coloring"), DAY, NOW)
    assert not refused.value.retryable and "Unauthorized" in str(refused.value)
    client.partner_token, client.user_token = "partner-token", None
    with pytest.raises(BookingUnavailable, match="YCLIENTS_USER_TOKEN"):
        client.record("1")


def test_fifty_clients_picking_at_once_get_each_time_at_most_once(yclients) -> None:
    fake, client, _ = yclients
    slots = client.free_slots(client.business.service("coloring"), DAY, NOW)[:6]
    outcomes: list[str] = []
    barrier = threading.Barrier(50)
    lock = threading.Lock()

    def pick(i: int) -> None:
        barrier.wait()
        outcome = "unanswered"
        for _ in range(5):  # a connection the stand-in's backlog dropped: retried, as the queue would
            try:
                client.book(slots[i % len(slots)], lead(i), NOW)
                outcome = "booked"
            except SlotTaken:
                outcome = "taken"
            except BookingUnavailable:
                continue
            break
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=pick, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 50 and "unanswered" not in outcomes
    records = fake.live()
    for a in records:
        for b in records:
            assert a is b or a.staff_id != b.staff_id or a.end <= b.start or b.end <= a.start
    assert outcomes.count("booked") == len(records) >= 2


def test_booking_again_for_the_same_lead_adopts_its_own_record(yclients) -> None:
    # book_record succeeded, the answer was lost (or the invocation died): the retry books again
    fake, client, server = yclients
    slot = client.free_slots(client.business.service("coloring"), DAY, NOW)[0]
    first = client.book(slot, lead(), NOW)
    again = client.book(slot, lead(), NOW)
    assert again.ref == first.ref and len(fake.live()) == 1
    listing = [r for r in server.requests if r.path == "/api/v1/records/555"]
    assert (
        listing
        and listing[-1].query["staff_id"] == "6544"
        and listing[-1].query["start_date"] == "2026-12-05"
    )
    assert listing[-1].headers["authorization"] == "Bearer partner-token, User user-token"
    # another client at that time is told it is taken
    with pytest.raises(SlotTaken):
        client.book(slot, lead(2), NOW)


def test_without_a_user_token_a_taken_time_stays_taken(yclients) -> None:
    fake, client, _ = yclients
    slot = client.free_slots(client.business.service("coloring"), DAY, NOW)[0]
    client.book(slot, lead(), NOW)
    client.user_token = None  # nothing to read the records with
    with pytest.raises(SlotTaken):
        client.book(slot, lead(), NOW)
    assert len(fake.live()) == 1


def test_a_rate_limited_lookup_is_retried_later_not_called_taken(yclients) -> None:
    fake, client, _ = yclients
    slot = client.free_slots(client.business.service("coloring"), DAY, NOW)[0]
    client.book(slot, lead(), NOW)
    check = client._check

    def check_then_limit(s):
        try:
            check(s)
        finally:
            fake.rate_limited = 1  # the records lookup that follows gets a 429

    client._check = check_then_limit  # type: ignore[method-assign]
    with pytest.raises(BookingUnavailable) as refused:
        client.book(slot, lead(), NOW)
    assert refused.value.retryable
