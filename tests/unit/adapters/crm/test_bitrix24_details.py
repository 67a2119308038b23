"""A client's details given after the record was written (a hot lead's phone that follows):
the person gets the phone beside the ones they have, our own record its new title and
comments, a record the lead joined keeps its own texts — and doing it twice changes nothing."""

from __future__ import annotations

from tests.support.bitrix24 import make_client, make_lead


def _phones(record: dict) -> list[str]:
    return [p["VALUE"] for p in record.get("PHONE") or []]


def test_a_lead_record_gets_the_phone_name_and_new_texts_once(classic_portal):
    client = make_client(classic_portal)
    [pushed] = client.push([make_lead(1, phone=None, name=None)])
    later = make_lead(
        1, phone="+79138402765", name="Ирина", title="Маникюр — Ирина", comments="Желаемое время: 17:00"
    )

    client.add_details(pushed.crm_id, "lead", later)
    client.add_details(pushed.crm_id, "lead", later)  # a redelivery

    record = classic_portal.portal.leads[int(pushed.crm_id)]
    assert _phones(record) == ["+79138402765"]
    assert record["NAME"] == "Ирина"
    assert record["TITLE"] == "Маникюр — Ирина" and record["COMMENTS"] == "Желаемое время: 17:00"


def test_a_phone_the_record_has_in_another_form_is_not_added_again(classic_portal):
    client = make_client(classic_portal)
    [pushed] = client.push([make_lead(2, phone="+79138402765")])
    record = classic_portal.portal.leads[int(pushed.crm_id)]
    record["PHONE"][0]["VALUE"] = "8 (913) 840-27-65"  # as a manager retyped it

    client.add_details(pushed.crm_id, "lead", make_lead(2, phone="+79138402765", name="Анна Петровна"))

    assert _phones(record) == ["8 (913) 840-27-65"]
    assert record["NAME"] == "Анна"  # a name the record has is the manager's to change


def test_a_deal_s_contact_gets_the_phone_and_the_deal_its_texts(simple_portal):
    client = make_client(simple_portal)
    [pushed] = client.push([make_lead(3, phone=None)])  # a contact with a name only
    deal = simple_portal.portal.deals[int(pushed.crm_id)]
    contact = simple_portal.portal.contacts[int(deal["CONTACT_ID"])]
    assert _phones(contact) == []

    later = make_lead(3, phone="+79138402765", comments="Желаемое время: 17:00")
    client.add_details(pushed.crm_id, "deal", later)
    client.add_details(pushed.crm_id, "deal", later)

    assert _phones(contact) == ["+79138402765"]
    assert deal["COMMENTS"] == "Желаемое время: 17:00"
    assert len(simple_portal.portal.contacts) == 1


def test_a_lead_that_joined_an_older_record_leaves_its_texts_alone(classic_portal):
    client = make_client(classic_portal)
    [first] = client.push([make_lead(4, phone="+79138402765", comments="Первая заявка")])
    [joined] = client.push([make_lead(5, phone="+79138402765", comments="Вторая заявка")])
    assert joined.crm_id == first.crm_id  # the second lead became a comment on the first

    client.add_details(joined.crm_id, "lead", make_lead(5, phone="+79138402765", comments="Новое время"))

    assert classic_portal.portal.leads[int(first.crm_id)]["COMMENTS"] == "Первая заявка"


def test_a_record_deleted_in_bitrix24_is_left_alone(classic_portal):
    client = make_client(classic_portal)
    [pushed] = client.push([make_lead(6, phone=None)])
    del classic_portal.portal.leads[int(pushed.crm_id)]

    client.add_details(pushed.crm_id, "lead", make_lead(6, phone="+79138402765"))  # no error
