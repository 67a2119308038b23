"""Leads as rows of a Google sheet: the real client and SheetsCrm against a stand-in for Google's
token endpoint and the Sheets API v4 values methods (tests/fakes/google_sheets_server.py)."""

from __future__ import annotations

import json

import pytest
import requests

from leadflow.adapters.crm import CrmUnavailable
from leadflow.adapters.crm.google_sheets import ServiceAccountToken, SheetsClient, a1, column_letter, row_of
from leadflow.adapters.crm.sheets_crm import COLUMNS, SheetsCrm
from leadflow.adapters.rate_limit import TokenBucket
from leadflow.business import Sheet
from leadflow.domain.models import Contact, LeadStatus, Utm
from tests.fakes.google_sheets_server import GoogleSheets, service_account_json
from tests.support.builders import lead as make_lead

SHEET_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
HEADER = [title for _, title in COLUMNS]


@pytest.fixture
def google():
    with GoogleSheets() as google:
        google.create(SHEET_ID)
        yield google


def sheets_crm(google, salon, key_json: str | None = None, limiter=None) -> SheetsCrm:
    session = requests.Session()
    token = ServiceAccountToken(key_json or service_account_json(), google.token_url, session, timeout_s=2)
    client = SheetsClient(google.url, token, session, limiter or TokenBucket(100, 100), timeout_s=1)
    return SheetsCrm(client, Sheet(spreadsheet_id=SHEET_ID), salon)


def lead(n: int, **fields):
    base = {
        "contact": Contact(name=f"Клиент {n}", phone=f"+7913000000{n}"),
        "service": "manicure",
        "owner": "olga",
        "status": "assigned",
        "utm": Utm(source="yandex", campaign="spring"),
    }
    return make_lead(f"L{n:04d}", **(base | fields))


def by_id(google) -> dict[str, dict[str, str]]:
    rows = google.rows(SHEET_ID)
    header = rows[0]
    return {
        row[header.index("ID лида")]: dict(zip(header, row, strict=False))
        for row in rows[1:]
        if len(row) > header.index("ID лида")
    }


def test_a_batch_becomes_one_row_per_lead_under_a_header_written_once(google, salon):
    crm = sheets_crm(google, salon)
    leads = [lead(1), lead(2), lead(3)]

    outcomes = crm.push([(item, None) for item in leads], salon)

    assert [(o.lead_id, o.crm_id, o.entity, o.error) for o in outcomes] == [
        (item.lead_id, item.lead_id, "row", None) for item in leads
    ]
    rows = google.rows(SHEET_ID)
    assert rows[0] == HEADER
    row = by_id(google)["L0001"]
    assert row["Имя"] == "Клиент 1" and row["Телефон"] == "+79130000001"
    assert row["Услуга"] == "Маникюр" and row["Канал"] == "Telegram"
    assert row["Источник / UTM"] == "utm_source=yandex, utm_campaign=spring"
    assert row["Статус"] == "назначен" and row["Температура"] == "тёплый"
    assert row["Дата и время"] == "2026-03-16 10:00"  # the salon's wall clock (Krasnoyarsk)
    assert len(rows) == 4
    # one token, one header read, one header write, one append for the whole batch
    assert google.token_requests == 1
    assert google.api_requests == [("read", "get"), ("write", "batchUpdate"), ("write", "append")]

    crm.push([(lead(4), None)], salon)
    assert google.rows(SHEET_ID)[0] == HEADER  # not written again
    assert google.api_requests[3:] == [("read", "get"), ("write", "append")]
    assert google.token_requests == 1  # the token is kept until it is about to expire


def test_a_lost_append_answer_then_redelivery_adds_no_second_row(google, salon):
    crm = sheets_crm(google, salon)
    crm.push([(lead(1), None)], salon)  # header in place
    google.lose_next_answer(after=1)  # the header read passes; the append is done, its answer lost
    batch = [(lead(2), None), (lead(3), None)]

    with pytest.raises(CrmUnavailable):
        crm.push(batch, salon)
    assert set(by_id(google)) == {"L0001", "L0002", "L0003"}  # Google did write them

    outcomes = crm.push(batch, salon, redelivered=True)

    assert [o.crm_id for o in outcomes] == ["L0002", "L0003"]
    assert len(google.rows(SHEET_ID)) == 4  # header + three leads, none twice
    assert google.api_requests[-2:] == [("read", "get"), ("read", "get")]  # header, id column: no append


def test_status_changes_find_the_row_by_lead_id_after_the_owner_sorted_and_added_columns(google, salon):
    crm = sheets_crm(google, salon)
    first, second = lead(1), lead(2)
    crm.push([(first, None), (second, None)], salon)

    def owner_edits(grid):
        # a column of their own in the middle, notes in it, and the rows sorted newest first
        for row in grid:
            row.insert(2, "")
        grid[0][2] = "Заметки"
        grid[1][2], grid[2][2] = "позвонить после 18", "VIP"
        grid[1:] = sorted(grid[1:], key=lambda r: r[-1], reverse=True)

    google.edit(SHEET_ID, "Лиды", owner_edits)

    crm.update_status(first.model_copy(update={"crm_id": "L0001", "status": LeadStatus.booked}))

    rows = by_id(google)
    assert rows["L0001"]["Статус"] == "записан"
    assert rows["L0002"]["Статус"] == "назначен"
    assert google.rows(SHEET_ID)[1][-1] == "L0002"  # sorted: the first lead is no longer in row 2
    assert rows["L0001"]["Заметки"] == "позвонить после 18" and rows["L0002"]["Заметки"] == "VIP"
    assert google.rows(SHEET_ID)[0][2] == "Заметки"  # the owner's header is left alone


def test_a_header_the_owner_started_keeps_its_cells_and_gets_only_what_is_missing(google, salon):
    google.create(SHEET_ID, rows=[["Имя", "Телефон", "Комментарий мастера"]])
    crm = sheets_crm(google, salon)

    crm.push([(lead(1), None)], salon)

    header = google.rows(SHEET_ID)[0]
    assert header[:3] == ["Имя", "Телефон", "Комментарий мастера"]
    assert set(header[3:]) == set(HEADER) - {"Имя", "Телефон"}
    row = google.rows(SHEET_ID)[1]
    assert row[0] == "Клиент 1" and row[1] == "+79130000001"
    assert len(row) < 3 or row[2] == ""  # the owner's column got nothing


def test_a_client_typed_formula_stays_text(google, salon):
    crm = sheets_crm(google, salon)
    crm.push([(lead(1, contact=Contact(name='=IMPORTXML("http://x")')), None)], salon)
    assert by_id(google)["L0001"]["Имя"] == '=IMPORTXML("http://x")'
    assert google.input_options == {"RAW"}


def test_429_backs_off_through_the_queue_and_spends_the_budget(google, salon):
    clock_now = [0.0]
    limiter = TokenBucket(0.9, 5, clock=lambda: clock_now[0], sleep=lambda s: None)
    crm = sheets_crm(google, salon, limiter=limiter)
    crm.push([(lead(1), None)], salon)
    google.fail_next(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Write requests'", after=1)

    with pytest.raises(CrmUnavailable, match="429"):
        crm.push([(lead(2), None)], salon)
    assert limiter.tokens < 1  # the next request waits instead of hitting the quota again
    assert "L0002" not in by_id(google)


def test_the_quota_of_a_real_minute_is_a_429(salon):
    with GoogleSheets(writes_per_minute=2) as google:
        google.create(SHEET_ID)
        crm = sheets_crm(google, salon)
        crm.push([(lead(1), None)], salon)  # header write + append: the minute's two writes
        with pytest.raises(CrmUnavailable, match="RESOURCE_EXHAUSTED"):
            crm.push([(lead(2), None)], salon)


def test_an_expired_token_is_renewed_once(google, salon):
    crm = sheets_crm(google, salon)
    crm.push([(lead(1), None)], salon)
    google.expire_tokens()  # Google revoked it early

    crm.push([(lead(2), None)], salon)

    assert google.token_requests == 2
    assert set(by_id(google)) == {"L0001", "L0002"}


def test_a_sheet_not_shared_with_the_account_is_refused_per_lead_with_what_to_do(salon):
    with GoogleSheets() as google:
        google.create(SHEET_ID, shared=False)
        crm = sheets_crm(google, salon)

        [outcome] = crm.push([(lead(1), None)], salon)

    assert outcome.crm_id is None and not outcome.retryable
    assert "403" in outcome.error and google.account in outcome.error


def test_a_wrong_tab_name_and_a_wrong_key_are_refused_with_the_reason(google, salon):
    session = requests.Session()
    token = ServiceAccountToken(service_account_json(), google.token_url, session)
    client = SheetsClient(google.url, token, session, TokenBucket(100, 100))
    crm = SheetsCrm(client, Sheet(spreadsheet_id=SHEET_ID, sheet="Заявки"), salon)
    [outcome] = crm.push([(lead(1), None)], salon)
    assert "Unable to parse range" in outcome.error and "Заявки" in outcome.error

    other_key = json.loads(service_account_json())
    other_key["client_email"] = "someone-else@other.iam.gserviceaccount.com"
    [outcome] = sheets_crm(google, salon, key_json=json.dumps(other_key)).push([(lead(1), None)], salon)
    assert "invalid_client" in outcome.error and not outcome.retryable

    [outcome] = sheets_crm(google, salon, key_json="{not json").push([(lead(1), None)], salon)
    assert "GOOGLE_SERVICE_ACCOUNT_JSON" in outcome.error


def test_forget_blanks_the_persons_cells_but_not_the_owners(google, salon):
    crm = sheets_crm(google, salon)
    crm.push([(lead(1), None), (lead(2), None)], salon)

    assert crm.forget(lead(1, crm_id="L0001")) is None

    rows = by_id(google)
    assert rows["L0001"].get("Телефон", "") == "" and rows["L0001"].get("Имя", "") == ""
    assert rows["L0002"]["Телефон"] == "+79130000002"


def test_a1_helpers():
    assert a1("Лиды", "A1") == "'Лиды'!A1"
    assert a1("It's", "1:1") == "'It''s'!1:1"
    assert row_of("'Лиды'!A42:M42") == 42
    assert [column_letter(i) for i in (0, 12, 25, 26, 701, 702)] == ["A", "M", "Z", "AA", "ZZ", "AAA"]


def test_a_phone_given_later_fills_the_row_and_keeps_what_the_owner_typed(google, salon):
    crm = sheets_crm(google, salon)
    hot = lead(3, contact=Contact(name=None, phone=None))
    crm.push([(hot, None)], salon)

    def owner_types(grid):
        grid[1][grid[0].index("Имя")] = "Ирина (звонила сама)"

    google.edit(SHEET_ID, "Лиды", owner_types)
    later = hot.model_copy(
        update={"crm_id": "L0003", "contact": Contact(phone="+79138402765"), "preferred_time": "17:00"}
    )
    crm.update_details(later, salon)

    row = by_id(google)["L0003"]
    assert row["Телефон"] == "+79138402765" and "17:00" in row["Пожелание"]
    assert row["Имя"] == "Ирина (звонила сама)"  # we have no name: the owner's stays
