"""Whole-request failures: which are retryable, and that a retry never doubles a record."""

from __future__ import annotations

import logging
import socket

import pytest
import requests

from leadflow.adapters.crm.bitrix24 import Bitrix24Client, Bitrix24Error
from leadflow.adapters.rate_limit import TokenBucket
from tests.support.bitrix24 import make_client, make_lead


def assert_one_record_per_lead(portal, leads) -> None:
    for lead in leads:
        assert len(portal.records_with_origin(lead.origin_id)) == 1, lead.origin_id


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (503, "QUERY_LIMIT_EXCEEDED"),
        (429, "OPERATION_TIME_LIMIT"),
        (500, "INTERNAL_SERVER_ERROR"),
        (502, "ERROR_UNEXPECTED_ANSWER"),
    ],
)
def test_limit_and_server_errors_are_retryable_and_the_retry_creates_each_lead_once(
    classic_portal, status, code
):
    client = make_client(classic_portal)
    leads = [make_lead(n, callback=True) for n in range(3)]
    classic_portal.fail_next(status, code, "refused", method="batch")

    with pytest.raises(Bitrix24Error) as failure:
        client.push(leads)

    assert failure.value.retryable is True
    assert failure.value.code == code and failure.value.status == status
    outcomes = client.push(leads)
    assert all(o.created and o.error is None for o in outcomes)
    assert_one_record_per_lead(classic_portal, leads)
    assert len(classic_portal.portal.activities) == 3


def test_a_timeout_after_the_portal_applied_the_batch_does_not_double_leads_without_phones(classic_portal):
    client = make_client(classic_portal, timeout_s=0.3, mode="classic")
    leads = [make_lead(n, phone=None, callback=True) for n in range(4)]
    classic_portal.delay_next(1.0, method="batch")  # carried out, answered too late

    with pytest.raises(Bitrix24Error) as failure:
        client.push(leads)
    assert failure.value.retryable and failure.value.code == "TIMEOUT"
    assert len(classic_portal.portal.leads) == 4  # the portal did the work

    outcomes = client.push(leads)  # the same warm client remembers the unknown outcome

    assert [o.crm_id for o in outcomes] == [
        str(classic_portal.records_with_origin(lead.origin_id)[0][1]) for lead in leads
    ]
    assert all(o.created and o.error is None for o in outcomes)
    assert_one_record_per_lead(classic_portal, leads)
    assert len(classic_portal.portal.activities) == 4


@pytest.mark.parametrize("mode", [1, 2])
def test_apply_then_fail_then_a_retry_from_a_fresh_client_creates_nothing_twice(portal_factory, mode):
    portal = portal_factory(mode=mode)
    with_phone = [make_lead(n) for n in range(3)]
    without_phone = [make_lead(n, phone=None) for n in range(10, 13)]
    leads = with_phone + without_phone
    portal.apply_then_lose_next(method="batch", skip=1)  # the lookup passes, the writes are lost

    with pytest.raises(Bitrix24Error) as failure:
        make_client(portal).push(leads)
    assert failure.value.retryable and failure.value.status == 504
    records_after_first_try = len(portal.portal.leads) + len(portal.portal.deals)

    # SQS redelivers to another Lambda: a new client that only knows "this is a redelivery".
    outcomes = make_client(portal).push(leads, after_unknown_outcome=True)

    assert all(o.created and o.crm_id and o.error is None for o in outcomes)
    assert len(portal.portal.leads) + len(portal.portal.deals) == records_after_first_try == 6
    assert_one_record_per_lead(portal, leads)
    assert not portal.portal.comments  # a record of ours is not mistaken for a client's duplicate


def test_a_redelivery_of_leads_with_phones_is_safe_even_without_the_flag(classic_portal):
    leads = [make_lead(n) for n in range(3)]
    make_client(classic_portal).push(leads)

    outcomes = make_client(classic_portal).push(leads)

    assert all(o.created and o.duplicate_of is None for o in outcomes)
    assert_one_record_per_lead(classic_portal, leads)
    assert not classic_portal.portal.comments


def test_an_invalid_webhook_is_not_retryable_and_the_secret_stays_out_of_the_error(classic_portal):
    wrong_url = classic_portal.webhook_url.replace(classic_portal.code, "stolen0code")
    client = Bitrix24Client(wrong_url, requests.Session(), TokenBucket(50, 500))

    with pytest.raises(Bitrix24Error) as failure:
        client.push([make_lead(1)])

    assert failure.value.retryable is False
    assert (failure.value.status, failure.value.code) == (401, "INVALID_CREDENTIALS")
    assert "stolen0code" not in str(failure.value)
    assert not classic_portal.portal.leads


def test_connection_refused_is_retryable_and_hides_the_webhook_url(caplog):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Bitrix24Client(
        f"http://127.0.0.1:{port}/rest/1/topsecretcode/", requests.Session(), TokenBucket(50, 500)
    )

    with caplog.at_level(logging.DEBUG), pytest.raises(Bitrix24Error) as failure:
        client.push([make_lead(1)])

    assert failure.value.retryable and failure.value.code == "CONNECTION_ERROR"
    assert "topsecretcode" not in str(failure.value)
    assert "topsecretcode" not in caplog.text


def test_log_lines_carry_no_phone_name_or_secret(classic_portal, caplog):
    client = make_client(classic_portal)
    lead = make_lead(1, assigned_by_id=404)
    classic_portal.fail_next(500, "INTERNAL_SERVER_ERROR", method="batch")

    with caplog.at_level(logging.DEBUG):
        with pytest.raises(Bitrix24Error):
            client.push([lead])
        client.push([lead, make_lead(2)])

    assert caplog.records, "the client logs what happened"
    for secret in (lead.phone, lead.phone[1:], "Анна", classic_portal.code, lead.comments):
        assert secret not in caplog.text


def test_a_failure_in_a_later_write_batch_reports_those_leads_and_keeps_the_earlier_ones(classic_portal):
    client = make_client(classic_portal)
    leads = [make_lead(n, callback=True) for n in range(40)]  # 80 write commands: 25 + 15 leads
    # the lookup and the first write batch pass; the second write batch is applied, its answer lost
    classic_portal.apply_then_lose_next(method="batch", skip=2)

    outcomes = client.push(leads)

    assert [o.origin_id for o in outcomes] == [lead.origin_id for lead in leads]
    assert all(o.created for o in outcomes[:25])
    assert all(o.crm_id is None and o.retryable and o.error for o in outcomes[25:])
    assert len(classic_portal.portal.leads) == 40  # the lost answer's leads exist on the portal

    again = client.push(leads[25:])  # the queue retries the failed ones; the client remembers

    assert all(o.created and o.error is None for o in again)
    assert_one_record_per_lead(classic_portal, leads)


def test_a_redelivered_duplicate_does_not_write_its_comment_twice(classic_portal):
    classic_portal.portal.leads[500] = {
        "ID": "500",
        "PHONE": [{"VALUE": "+79160000001", "VALUE_TYPE": "WORK"}],
    }
    leads = [make_lead(1, callback=True), make_lead(2)]
    classic_portal.apply_then_lose_next(method="batch", skip=1)
    with pytest.raises(Bitrix24Error):
        make_client(classic_portal).push(leads)

    again = make_client(classic_portal).push(leads, after_unknown_outcome=True)

    assert again[0].duplicate_of == "500" and again[0].error is None
    assert again[1].created
    assert len(classic_portal.comments_on("lead", 500)) == 1
    assert len(classic_portal.portal.activities) == 1
    assert_one_record_per_lead(classic_portal, leads[1:])
    # redelivery: lookup + comment check, and no write at all since the lost attempt did everything
    assert len(classic_portal.server.requests) == 2 + 2
