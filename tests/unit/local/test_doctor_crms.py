"""`leadflow doctor` for amoCRM and Google Sheets: the real checks against the stand-ins, each
failure named with where to fix it."""

from __future__ import annotations

import json

import pytest

from leadflow_local.doctor import Http, amocrm, google_sheet
from tests.fakes.amocrm_server import AmoCrmAccount
from tests.fakes.google_sheets_server import GoogleSheets, service_account_json

SHEET_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


def test_amocrm_with_a_working_token_is_ok_and_a_refused_one_says_how_to_get_another():
    with AmoCrmAccount() as amo:
        good = amocrm(Http(), amo.base_url, amo.token, "AMOCRM_TOKEN")
        bad = amocrm(Http(), amo.base_url, "expired", "AMOCRM_TOKEN")
        amo.blocked = True
        blocked = amocrm(Http(), amo.base_url, amo.token, "AMOCRM_TOKEN")

    assert good.status == "ok" and "salon" in good.text
    assert bad.status == "problem" and "long-lived token into AMOCRM_TOKEN" in bad.text
    assert blocked.status == "problem" and "forbids" in blocked.text


def test_an_unreachable_amocrm_names_the_address_setting():
    check = amocrm(Http(timeout=(0.5, 0.5)), "http://127.0.0.1:9", "t", "AMOCRM_TOKEN")
    assert check.status == "problem" and "AMOCRM_BASE_URL" in check.text


@pytest.mark.parametrize(
    ("prepare", "tab", "status", "words"),
    [
        (lambda g: g.create(SHEET_ID), "Лиды", "ok", "answers to"),
        (lambda g: g.create(SHEET_ID, shared=False), "Лиды", "problem", "not shared with leadflow@"),
        (lambda g: g.create("1OtherSheetIdOtherSheetIdOther00"), "Лиды", "problem", "no spreadsheet"),
        (lambda g: g.create(SHEET_ID), "Заявки", "problem", "no tab «Заявки»"),
    ],
)
def test_a_google_sheet_is_checked_as_the_service_account_sees_it(prepare, tab, status, words):
    with GoogleSheets() as google:
        prepare(google)
        check = google_sheet(
            Http(), service_account_json(), google.token_url, google.url, SHEET_ID, tab, "KEY"
        )
    assert check.status == status and words in check.text


def test_a_broken_or_foreign_key_is_a_problem_before_any_sheet_is_asked():
    with GoogleSheets() as google:
        google.create(SHEET_ID)
        broken = google_sheet(Http(), "{", google.token_url, google.url, SHEET_ID, "Лиды", "KEY")
        foreign = json.loads(service_account_json())
        foreign["client_email"] = "someone@other.iam.gserviceaccount.com"
        refused = google_sheet(
            Http(), json.dumps(foreign), google.token_url, google.url, SHEET_ID, "Лиды", "KEY"
        )
        assert google.api_requests == []
    assert broken.status == "problem" and "not JSON" in broken.text
    assert refused.status == "problem" and "invalid_client" in refused.text
