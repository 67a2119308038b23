"""Follow-ups on one record: status mapping both ways, comments, reassignment, priority."""

from __future__ import annotations

import pytest

from leadflow.adapters.crm.bitrix24 import DEAL_STAGE_IDS, LEAD_STATUS_IDS, Bitrix24Error
from leadflow.domain.models import LeadStatus
from tests.support.bitrix24 import make_client, make_lead


def test_every_lead_status_has_a_lead_step_and_a_deal_stage():
    assert set(LEAD_STATUS_IDS) == set(DEAL_STAGE_IDS) == {s.value for s in LeadStatus}


@pytest.mark.parametrize(
    ("status", "lead_step", "deal_stage"),
    [
        ("accepted", "IN_PROCESS", "PREPARATION"),
        ("booked", "PROCESSED", "EXECUTING"),
        ("visited", "CONVERTED", "WON"),
        ("no_show", "JUNK", "LOSE"),
        ("not_target", "JUNK", "APOLOGY"),
    ],
)
def test_update_status_moves_leads_and_deals_to_the_mapped_step(
    classic_portal, simple_portal, status, lead_step, deal_stage
):
    lead_client, deal_client = make_client(classic_portal), make_client(simple_portal)
    [lead] = lead_client.push([make_lead(1)])
    [deal] = deal_client.push([make_lead(1)])

    lead_client.update_status(lead.crm_id, "lead", status)
    deal_client.update_status(deal.crm_id, "deal", status)

    assert classic_portal.portal.leads[int(lead.crm_id)]["STATUS_ID"] == lead_step
    assert simple_portal.portal.deals[int(deal.crm_id)]["STAGE_ID"] == deal_stage


def test_get_status_reads_a_step_changed_in_bitrix24_back_as_our_status(classic_portal, simple_portal):
    lead_client, deal_client = make_client(classic_portal), make_client(simple_portal)
    [lead] = lead_client.push([make_lead(1)])
    [deal] = deal_client.push([make_lead(1)])
    assert lead_client.get_status(lead.crm_id, "lead") is None  # NEW: nothing we did not know

    classic_portal.portal.leads[int(lead.crm_id)]["STATUS_ID"] = "IN_PROCESS"
    simple_portal.portal.deals[int(deal.crm_id)]["STAGE_ID"] = "C3:WON"  # another pipeline

    assert lead_client.get_status(lead.crm_id, "lead") == "accepted"
    assert deal_client.get_status(deal.crm_id, "deal") == "visited"
    assert deal_client.get_status("999999", "deal") is None  # deleted in the CRM


def test_comment_reassign_and_priority_land_on_the_record(classic_portal):
    client = make_client(classic_portal)
    [lead] = client.push([make_lead(1)])
    record_id = int(lead.crm_id)

    client.add_comment(lead.crm_id, "lead", "Клиентка просит мастера Ольгу")
    client.reassign(lead.crm_id, "lead", 7)
    client.raise_priority(lead.crm_id, "lead")

    texts = [c["COMMENT"] for c in classic_portal.comments_on("lead", record_id)]
    assert texts[0] == "Клиентка просит мастера Ольгу"
    assert "приоритет" in texts[1].lower()
    assert classic_portal.portal.leads[record_id]["ASSIGNED_BY_ID"] == "7"
    assert classic_portal.portal.pinned == {
        c["ID"] for c in classic_portal.comments_on("lead", record_id)[1:]
    }


def test_follow_ups_on_a_missing_record_raise_a_non_retryable_error(classic_portal):
    client = make_client(classic_portal)

    with pytest.raises(Bitrix24Error) as failure:
        client.reassign("424242", "lead", 7)

    assert failure.value.retryable is False and failure.value.status == 400


def test_unknown_entity_or_status_is_refused_before_any_request(classic_portal):
    client = make_client(classic_portal)

    with pytest.raises(ValueError):
        client.update_status("1", "contact", "accepted")
    with pytest.raises(ValueError):
        client.update_status("1", "lead", "teleported")
    assert not classic_portal.server.requests
