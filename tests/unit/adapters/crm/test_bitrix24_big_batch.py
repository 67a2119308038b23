"""Route batches of up to 50 leads: two HTTP requests where the commands fit, exactly once on
redelivery, one bad lead failing alone."""

from __future__ import annotations

import json

import pytest

from tests.support.bitrix24 import CLASSIC, SIMPLE, make_client, make_lead


def batch_sizes(portal) -> list[int]:
    return [len(json.loads(r.body)["cmd"]) for r in portal.server.requests if r.path.endswith("/batch")]


def one_record_each(portal, leads) -> bool:
    return all(len(portal.records_with_origin(lead.origin_id)) == 1 for lead in leads)


def mixed_leads(count: int, *, callback_every: int = 0) -> list:
    """Every fifth lead without a phone (a messenger lead), the rest with their own phone."""
    return [
        make_lead(
            n,
            phone=None if n % 5 == 4 else "auto",
            callback=bool(callback_every) and n % callback_every == 0,
        )
        for n in range(count)
    ]


@pytest.mark.parametrize(
    ("mode", "configured", "leads"),
    [
        (CLASSIC, "classic", mixed_leads(50)),  # 40 phones + our list; 50 adds
        (CLASSIC, "auto", mixed_leads(50)),  # first push: + the mode and both lists = 43
        (CLASSIC, "classic", [make_lead(n, callback=True) for n in range(25)]),  # 25 adds + 25 tasks
        (SIMPLE, "simple", [make_lead(n) for n in range(25)]),  # 25 contacts + 25 deals
    ],
    ids=["classic-50", "classic-50-mode-unknown", "classic-25-call-backs", "simple-25-new-clients"],
)
def test_a_route_batch_costs_two_requests_on_first_delivery(portal_factory, mode, configured, leads):
    portal = portal_factory(mode=mode)
    client = make_client(portal, mode=configured)

    outcomes = client.push(leads)

    assert all(o.created and o.error is None for o in outcomes)
    assert len(portal.server.requests) == 2
    assert max(batch_sizes(portal)) <= 50
    assert one_record_each(portal, leads)


def test_fifty_leads_with_fifty_distinct_phones_need_a_second_lookup(classic_portal):
    client = make_client(classic_portal, mode="classic")
    leads = [make_lead(n) for n in range(50)]  # 50 findbycomm + our list: one command too many

    outcomes = client.push(leads)

    assert all(o.created for o in outcomes)
    assert len(classic_portal.server.requests) == 4  # 49 leads in two requests, then the 50th
    assert one_record_each(classic_portal, leads)


@pytest.mark.parametrize("mode", [CLASSIC, SIMPLE])
def test_redelivery_of_a_big_batch_whose_answer_was_lost_creates_no_second_record(portal_factory, mode):
    portal = portal_factory(mode=mode)
    leads = mixed_leads(40, callback_every=1)  # classic: 80 write commands, simple: up to 112
    # the lookup and the first write batch pass; the second is carried out and its answer lost
    portal.apply_then_lose_next(method="batch", skip=2)
    first = make_client(portal).push(leads)
    assert any(o.created for o in first) and any(o.error and o.retryable for o in first)

    # SQS redelivers the whole batch to another Lambda: a new client that only knows it is a redelivery
    again = make_client(portal).push(leads, after_unknown_outcome=True)

    assert all(o.created and o.error is None for o in again)
    assert [o.crm_id for o in again] == [
        str(portal.records_with_origin(lead.origin_id)[0][1]) for lead in leads
    ]
    assert one_record_each(portal, leads)
    assert len(portal.portal.leads) + len(portal.portal.deals) == 40
    assert len(portal.portal.activities) == 40  # every call-back task once
    assert len(portal.portal.contacts) == (40 if mode == SIMPLE else 0)  # no client twice
    assert not portal.portal.comments  # a record of ours is not mistaken for a client's duplicate


def test_a_redelivered_first_write_batch_costs_one_lookup_and_writes_nothing(classic_portal):
    leads = mixed_leads(50)
    classic_portal.apply_then_lose_next(method="batch", skip=1)
    with pytest.raises(Exception):  # noqa: B017 - the first write's answer is lost: the push fails whole
        make_client(classic_portal, mode="classic").push(leads)
    sent = len(classic_portal.server.requests)

    again = make_client(classic_portal, mode="classic").push(leads, after_unknown_outcome=True)

    assert all(o.created and o.error is None for o in again)
    assert len(classic_portal.server.requests) - sent == 1  # the ORIGIN_ID lookup found them all
    assert one_record_each(classic_portal, leads)


@pytest.mark.parametrize(
    ("mode", "count"),
    [(CLASSIC, 50), (SIMPLE, 25)],
)
def test_one_bad_lead_in_a_big_batch_does_not_fail_the_others(portal_factory, mode, count):
    portal = portal_factory(mode=mode)
    leads = [make_lead(n, phone=None if n % 5 == 4 else "auto") for n in range(count)]
    leads[17] = make_lead(17, assigned_by_id=404)  # no such user on the portal

    outcomes = make_client(portal).push(leads)

    bad = outcomes[17]
    assert bad.crm_id is None and "User with ID 404 not found" in bad.error and not bad.retryable
    others = outcomes[:17] + outcomes[18:]
    assert all(o.created and o.error is None for o in others)
    assert len(portal.portal.leads) + len(portal.portal.deals) == count - 1
    assert len(portal.server.requests) == 2


@pytest.mark.parametrize("mode", [CLASSIC, SIMPLE])
def test_the_same_phone_in_two_write_batches_of_one_push_joins_the_first_record(portal_factory, mode):
    portal = portal_factory(mode=mode)
    leads = [make_lead(n, callback=True) for n in range(30)]  # more than one write batch
    leads[29] = make_lead(29, phone=leads[0].phone, callback=True)

    outcomes = make_client(portal).push(leads)

    assert all(o.error is None for o in outcomes)
    assert len(portal.server.requests) >= 3  # leads 0 and 29 went in different write batches
    if mode == CLASSIC:
        assert outcomes[29].duplicate_of == outcomes[0].crm_id and not outcomes[29].created
        assert len(portal.portal.leads) == 29
        assert len(portal.comments_on("lead", int(outcomes[0].crm_id))) == 1
    else:
        first, last = (portal.portal.deals[int(outcomes[i].crm_id)] for i in (0, 29))
        assert first["CONTACT_ID"] == last["CONTACT_ID"]  # a repeat deal of the same client
        assert len(portal.portal.contacts) == 29
