"""push(): both CRM modes, fields on the wire, duplicates, request counts, per-command errors."""

from __future__ import annotations

import json

from tests.fakes.bitrix24_server import parse_query
from tests.support.bitrix24 import make_client, make_lead


def batch_commands(portal) -> list[dict[str, str]]:
    """The cmd maps of every batch the portal received, in order."""
    return [json.loads(r.body)["cmd"] for r in portal.server.requests if r.path.endswith("/batch")]


def test_classic_mode_creates_a_lead_with_every_field_and_a_callback_task(classic_portal):
    client = make_client(classic_portal, tags_field="UF_CRM_TAGS")
    lead = make_lead(1, callback=True)

    [outcome] = client.push([lead])

    assert outcome.created and outcome.entity == "lead" and outcome.error is None
    record = classic_portal.portal.leads[int(outcome.crm_id)]
    assert record["TITLE"] == lead.title
    assert record["NAME"] == "Анна"
    assert [(p["VALUE"], p["VALUE_TYPE"]) for p in record["PHONE"]] == [(lead.phone, "WORK")]
    assert record["SOURCE_ID"] == "WEB" and record["SOURCE_DESCRIPTION"] == "instagram"
    assert (record["UTM_SOURCE"], record["UTM_MEDIUM"], record["UTM_CAMPAIGN"]) == (
        "instagram",
        "cpc",
        "spring",
    )
    assert "UTM_CONTENT" not in record  # empty UTM parts are not sent
    assert record["ASSIGNED_BY_ID"] == "5"
    assert record["COMMENTS"] == lead.comments
    assert record["UF_CRM_TAGS"] == ["hot", "haircut"]
    assert (record["ORIGINATOR_ID"], record["ORIGIN_ID"]) == ("leadflow", "lead-00001")
    assert record["_REGISTER_SONET_EVENT"] == "Y"
    method, _, query = batch_commands(classic_portal)[-1]["add0"].partition("?")
    sent = parse_query(query)
    assert method == "crm.lead.add"
    assert sent["fields"]["PHONE"] == [{"VALUE": lead.phone, "VALUE_TYPE": "WORK"}]
    assert sent["params"] == {"REGISTER_SONET_EVENT": "Y"}
    [task] = classic_portal.portal.activities.values()
    assert (task["OWNER_TYPE_ID"], task["OWNER_ID"]) == (1, int(outcome.crm_id))
    assert task["DEADLINE"] == "2026-03-07T10:01:00+00:00"
    assert task["RESPONSIBLE_ID"] == 5
    assert task["DESCRIPTION"] == "Перезвонить"


def test_simple_mode_creates_contact_and_deal_linked_together(simple_portal):
    client = make_client(simple_portal)

    [outcome] = client.push([make_lead(2, callback=True)])

    assert outcome.created and outcome.entity == "deal"
    assert not simple_portal.portal.leads
    deal = simple_portal.portal.deals[int(outcome.crm_id)]
    [(contact_id, contact)] = simple_portal.portal.contacts.items()
    assert deal["CONTACT_ID"] == str(contact_id)
    assert contact["NAME"] == "Анна" and contact["PHONE"][0]["VALUE"] == "+79160000002"
    assert deal["ORIGIN_ID"] == "lead-00002" and deal["UTM_SOURCE"] == "instagram"
    assert "PHONE" not in deal  # deals carry no phone of their own
    [task] = simple_portal.portal.activities.values()
    assert (task["OWNER_TYPE_ID"], task["OWNER_ID"]) == (2, int(outcome.crm_id))


def test_mode_is_read_once_per_client_and_not_at_all_when_configured(simple_portal, classic_portal):
    auto = make_client(simple_portal)
    auto.push([make_lead(1)])
    auto.push([make_lead(2)])
    assert simple_portal.calls.count("crm.settings.mode.get") == 1

    fixed = make_client(classic_portal, mode="classic")
    fixed.push([make_lead(3)])
    assert "crm.settings.mode.get" not in classic_portal.calls


def test_twenty_five_leads_with_call_backs_cost_two_requests_and_twenty_six_cost_three(classic_portal):
    client = make_client(classic_portal)

    client.push([make_lead(n, callback=True) for n in range(25)])  # 25 adds + 25 tasks: one batch
    assert len(classic_portal.server.requests) == 2

    client.push([make_lead(n, callback=True) for n in range(100, 126)])  # one lookup, two write batches
    assert len(classic_portal.server.requests) == 2 + 3
    assert len(classic_portal.portal.leads) == 51 and len(classic_portal.portal.activities) == 51
    assert all(len(cmd) <= 50 for cmd in batch_commands(classic_portal))


def test_leads_without_a_phone_skip_the_duplicate_check(classic_portal):
    client = make_client(classic_portal, mode="classic")

    outcomes = client.push([make_lead(n, phone=None) for n in range(5)])

    assert all(o.created for o in outcomes)
    assert len(classic_portal.server.requests) == 1
    assert "crm.duplicate.findbycomm" not in classic_portal.calls


def test_simple_mode_with_callbacks_keeps_every_batch_within_fifty_commands(simple_portal):
    client = make_client(simple_portal, mode="simple")

    outcomes = client.push([make_lead(n, callback=True) for n in range(20)])

    assert all(o.created for o in outcomes)
    assert all(len(cmd) <= 50 for cmd in batch_commands(simple_portal))
    assert len(simple_portal.portal.deals) == 20 and len(simple_portal.portal.activities) == 20


def test_known_phone_in_classic_mode_gets_a_comment_not_a_new_lead(classic_portal):
    existing = classic_portal.portal
    existing.leads[500] = {
        "ID": "500",
        "TITLE": "old",
        "PHONE": [{"VALUE": "+7 (916) 000-00-07", "VALUE_TYPE": "WORK"}],
    }
    client = make_client(classic_portal)

    [outcome] = client.push([make_lead(7, callback=True)])

    assert not outcome.created
    assert outcome.duplicate_of == "500" and outcome.crm_id == "500" and outcome.error is None
    assert list(existing.leads) == [500]
    [comment] = classic_portal.comments_on("lead", 500)
    assert "lead-00007" in comment["COMMENT"] and "Хочу на стрижку" in comment["COMMENT"]
    [task] = existing.activities.values()
    assert task["OWNER_ID"] == 500


def test_same_phone_twice_in_one_push_makes_one_lead_and_one_comment(classic_portal):
    client = make_client(classic_portal)
    first = make_lead(1, phone="+79161112233")
    second = make_lead(2, phone="+7 916 111-22-33")

    one, two = client.push([first, second])

    assert one.created and not two.created
    assert two.duplicate_of == one.crm_id
    assert len(classic_portal.portal.leads) == 1
    assert len(classic_portal.comments_on("lead", int(one.crm_id))) == 1
    assert len(classic_portal.server.requests) == 2


def test_known_phone_in_simple_mode_reuses_the_contact(simple_portal):
    simple_portal.portal.contacts[40] = {
        "ID": "40",
        "PHONE": [{"VALUE": "+79160000003", "VALUE_TYPE": "WORK"}],
    }
    client = make_client(simple_portal)

    [outcome] = client.push([make_lead(3)])

    assert outcome.created
    assert list(simple_portal.portal.contacts) == [40]
    assert simple_portal.portal.deals[int(outcome.crm_id)]["CONTACT_ID"] == "40"


def test_a_failing_command_fails_only_its_own_lead(classic_portal):
    client = make_client(classic_portal)
    good = make_lead(1, callback=True)
    unknown_owner = make_lead(2, callback=True, assigned_by_id=404)

    ok, bad = client.push([good, unknown_owner])

    assert ok.created and ok.error is None
    assert bad.crm_id is None and not bad.created
    assert "User with ID 404 not found" in bad.error
    assert bad.retryable is False  # a validation error repeats on retry
    assert len(classic_portal.portal.leads) == 1
    assert len(classic_portal.portal.activities) == 1  # the failed lead's task had no owner to attach to


def test_a_required_field_missing_on_the_portal_is_reported_per_lead(simple_portal):
    simple_portal.portal.required_fields["deal"] = {"UF_CRM_BRANCH"}
    client = make_client(simple_portal)

    outcomes = client.push([make_lead(1), make_lead(2)])

    assert all(o.crm_id is None and "UF_CRM_BRANCH" in o.error and not o.retryable for o in outcomes)
    assert not simple_portal.portal.deals


def test_outcomes_keep_the_input_order_across_chunks(classic_portal):
    client = make_client(classic_portal)
    leads = [make_lead(n) for n in range(45)]

    outcomes = client.push(leads)

    assert [o.origin_id for o in outcomes] == [lead.origin_id for lead in leads]
    assert {classic_portal.portal.leads[int(o.crm_id)]["ORIGIN_ID"] for o in outcomes} == {
        lead.origin_id for lead in leads
    }
