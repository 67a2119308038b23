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
