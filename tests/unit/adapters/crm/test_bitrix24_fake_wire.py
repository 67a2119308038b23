"""The fake portal accepts what Bitrix24 accepts: form-encoded PHP keys, batch cmd strings."""

from __future__ import annotations

from urllib.parse import urlencode

import requests

from leadflow.adapters.crm.bitrix24 import php_query
from tests.fakes.bitrix24_server import parse_query


def test_php_query_round_trips_nested_fields():
    params = {"fields": {"TITLE": "Маникюр & педикюр", "PHONE": [{"VALUE": "+7 916", "VALUE_TYPE": "WORK"}]}}

    encoded = php_query(params)

    assert "fields%5BPHONE%5D%5B0%5D%5BVALUE%5D=%2B7+916" in encoded
    assert parse_query(encoded) == params


def test_form_encoded_add_and_get(classic_portal):
    body = urlencode(
        {
            "fields[TITLE]": "Звонок",
            "fields[PHONE][0][VALUE]": "+79160000001",
            "fields[PHONE][0][VALUE_TYPE]": "WORK",
        }
    )
    added = requests.post(
        classic_portal.webhook_url + "crm.lead.add.json",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    ).json()

    got = requests.get(classic_portal.webhook_url + "crm.lead.get", params={"id": added["result"]}, timeout=5)

    assert set(added["time"]) >= {"start", "finish", "duration", "operating", "operating_reset_at"}
    assert got.json()["result"]["PHONE"][0]["VALUE"] == "+79160000001"


def test_form_encoded_batch_with_result_substitution_and_errors(classic_portal):
    body = urlencode(
        {
            "halt": "0",
            "cmd[mode]": "crm.settings.mode.get",
            "cmd[add]": "crm.lead.add?" + urlencode({"fields[TITLE]": "x"}),
            "cmd[note]": "crm.timeline.comment.add?"
            + urlencode(
                {"fields[ENTITY_TYPE]": "lead", "fields[ENTITY_ID]": "$result[add]", "fields[COMMENT]": "hi"}
            ),
            "cmd[bad]": "crm.timeline.comment.add?" + urlencode({"fields[ENTITY_TYPE]": "lead"}),
            "cmd[list]": "crm.lead.list?" + urlencode({"select[]": "ID"}),
        }
    )

    answer = requests.post(classic_portal.webhook_url + "batch", data=body, timeout=5).json()["result"]

    assert answer["result"]["mode"] == 1
    lead_id = answer["result"]["add"]
    assert classic_portal.comments_on("lead", lead_id)[0]["COMMENT"] == "hi"
    assert answer["result_error"]["bad"]["error"] == "100"
    assert answer["result_total"] == {"list": 1}
    assert set(answer["result_time"]) == {"mode", "add", "note", "list"}


def test_an_all_good_batch_answers_empty_errors_as_a_list(classic_portal):
    answer = requests.post(
        classic_portal.webhook_url + "batch",
        json={"halt": 0, "cmd": {"m": "crm.settings.mode.get"}},
        timeout=5,
    ).json()

    assert answer["result"]["result_error"] == []
    assert answer["result"]["result_next"] == []


def test_unknown_method_and_wrong_code_answer_like_bitrix24(classic_portal):
    missing = requests.post(classic_portal.webhook_url + "crm.nothing.here", json={}, timeout=5)
    wrong_hook = classic_portal.webhook_url.replace(classic_portal.code, "x")
    wrong = requests.post(wrong_hook + "crm.lead.list", json={}, timeout=5)

    assert (missing.status_code, missing.json()["error"]) == (404, "ERROR_METHOD_NOT_FOUND")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "INVALID_CREDENTIALS")


def batch_of(portal, commands: dict[str, str]) -> requests.Response:
    return requests.post(portal.webhook_url + "batch", json={"halt": 0, "cmd": commands}, timeout=5)


def test_a_batch_of_more_than_fifty_commands_is_refused_whole(classic_portal):
    fifty_one = {f"add{i}": "crm.lead.add?" + php_query({"fields": {"TITLE": str(i)}}) for i in range(51)}

    refused = batch_of(classic_portal, fifty_one)
    fifty = batch_of(classic_portal, dict(list(fifty_one.items())[:50]))

    assert (refused.status_code, refused.json()["error"]) == (400, "ERROR_BATCH_LENGTH_EXCEEDED")
    assert fifty.status_code == 200 and len(fifty.json()["result"]["result"]) == 50
    assert len(classic_portal.portal.leads) == 50  # nothing of the refused batch ran
    assert classic_portal.violations == ["batch of 51 commands (at most 50)"]
    classic_portal.violations.clear()


def test_a_result_reference_must_name_an_earlier_command(classic_portal):
    answer = batch_of(
        classic_portal,
        {
            "note": "crm.timeline.comment.add?"
            + php_query({"fields": {"ENTITY_TYPE": "lead", "ENTITY_ID": "$result[add]", "COMMENT": "hi"}}),
            "add": "crm.lead.add?" + php_query({"fields": {"TITLE": "x"}}),
        },
    ).json()["result"]

    assert "note" in answer["result_error"]  # "$result[add]" was still empty
    assert "add" in answer["result"]
    assert classic_portal.violations == ["note: $result[add] names no command before it"]
    classic_portal.violations.clear()


def test_a_reference_to_a_failed_command_is_empty_and_fails_only_its_own_command(classic_portal):
    answer = batch_of(
        classic_portal,
        {
            "bad": "crm.lead.add?" + php_query({"fields": {"TITLE": "x", "ASSIGNED_BY_ID": 404}}),
            "todo": "crm.activity.todo.add?"
            + php_query(
                {"ownerTypeId": 1, "ownerId": "$result[bad]", "deadline": "2026-03-07T10:00:00+03:00"}
            ),
            "good": "crm.lead.add?" + php_query({"fields": {"TITLE": "y"}}),
        },
    ).json()["result"]

    assert set(answer["result_error"]) == {"bad", "todo"}
    assert set(answer["result"]) == {"good"}
    assert not classic_portal.violations  # referring to a command that failed is allowed


def test_findbycomm_takes_at_most_twenty_values_and_answers_one_union_of_ids(classic_portal):
    for n in (1, 2):
        classic_portal.portal.leads[n] = {"ID": str(n), "PHONE": [{"VALUE": f"+7916000000{n}"}]}
    twenty = [f"+7916000{n:04d}" for n in range(20)]

    union = batch_of(
        classic_portal,
        {"dup": "crm.duplicate.findbycomm?" + php_query({"type": "PHONE", "values": twenty})},
    ).json()["result"]
    too_many = batch_of(
        classic_portal,
        {
            "dup": "crm.duplicate.findbycomm?"
            + php_query({"type": "PHONE", "values": [*twenty, "+79990000000"]})
        },
    ).json()["result"]

    assert union["result"]["dup"] == {"LEAD": [1, 2]}  # which phone matched which lead is not said
    assert "dup" in too_many["result_error"]
    assert classic_portal.violations == ["findbycomm with 21 values (at most 20)"]
    classic_portal.violations.clear()
