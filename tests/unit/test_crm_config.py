"""``crm:`` in the business config: which CRM, the sheet, amoCRM's stages — and that configs
written before ``kind`` existed keep meaning what they meant."""

from __future__ import annotations

import pytest

from leadflow import wiring
from leadflow.adapters.crm import BuiltinCrm
from leadflow.business import parse_business_config
from tests.unit.test_business_config import BASE, errors_of

SHEET_URL = "https://docs.google.com/spreadsheets/d/1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789/edit#gid=0"


def config(crm: str):
    return parse_business_config(BASE + crm, source="biz.yaml")


def test_a_sheet_is_named_by_its_address_or_its_id():
    cfg = config(f"crm: {{kind: sheets, sheet: {{spreadsheet_id: '{SHEET_URL}', sheet: Заявки}}}}\n")
    assert cfg.crm.sheet.spreadsheet_id == "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
    assert cfg.crm.sheet.sheet == "Заявки"
    assert (
        config(
            "crm: {kind: sheets, sheet: {spreadsheet_id: 1AbCdEfGhIjKlMnOpQrStUvWxYz01}}\n"
        ).crm.sheet.sheet
        == "Лиды"
    )


def test_mistakes_in_crm_are_named():
    assert "kind: sheets needs sheet" in errors_of(BASE + "crm: {kind: sheets}\n")
    assert "not a spreadsheet id" in errors_of(
        BASE + "crm: {kind: sheets, sheet: {spreadsheet_id: my sheet}}\n"
    )
    assert "tab name" in errors_of(
        BASE + "crm: {kind: sheets, sheet: {spreadsheet_id: 1AbCdEfGhIjKlMnOpQrStUvWxYz01, sheet: 'a/b'}}\n"
    )
    assert "nothing to mirror" in errors_of(
        BASE + "crm: {kind: builtin, mirror_sheet: {spreadsheet_id: 1AbCdEfGhIjKlMnOpQrStUvWxYz01}}\n"
    )
    assert "is not a lead status" in errors_of(
        BASE + "crm: {kind: amocrm, amocrm: {statuses: {acepted: 5}}}\n"
    )
    assert "kind" in errors_of(BASE + "crm: {kind: salesforce}\n")


def test_amocrm_stages_both_ways():
    amo = config(
        "crm: {kind: amocrm, amocrm: {statuses: {accepted: 11, booked: 12, confirmed: 12}}}\n"
    ).crm.amocrm
    assert (amo.stage_of("accepted"), amo.stage_of("visited"), amo.stage_of("lost"), amo.stage_of("new")) == (
        11, 142, 143, None,
    )  # fmt: skip
    assert (amo.status_of(12), amo.status_of(142), amo.status_of(143), amo.status_of(99)) == (
        "confirmed", "visited", "lost", None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("url", "kind"), [(None, "builtin"), ("https://x.bitrix24.ru/rest/1/abc/", "bitrix24")]
)
def test_without_kind_the_crm_is_what_it_always_was(monkeypatch, url, kind):
    if url:
        monkeypatch.setenv("BITRIX24_WEBHOOK_URL", url)
    crm = wiring.make_crm(config("crm: {mode: classic}\n"))
    assert crm.name == kind
    assert isinstance(crm, BuiltinCrm) == (kind == "builtin")


def test_a_named_crm_without_its_secret_says_which(monkeypatch):
    with pytest.raises(RuntimeError, match="AMOCRM_BASE_URL"):
        wiring.make_crm(config("crm: {kind: amocrm}\n"))
    with pytest.raises(RuntimeError, match="GOOGLE_SERVICE_ACCOUNT_JSON"):
        wiring.make_crm(
            config("crm: {kind: sheets, sheet: {spreadsheet_id: 1AbCdEfGhIjKlMnOpQrStUvWxYz01}}\n")
        )


def test_budgets_per_crm_and_the_configs_own():
    assert config("").crm.request_budget("amocrm") == (7.0, 1)
    assert config("").crm.request_budget("bitrix24") == (2.0, 50)
    assert config("crm: {requests_per_s: 5, burst: 250}\n").crm.request_budget("bitrix24") == (5.0, 250)


def test_each_crm_account_has_its_own_shared_budget_item():
    from leadflow.adapters.rate_limit import limiter_key

    keys = [limiter_key(k) for k in ("https://salon.bitrix24.ru", "amocrm:https://salon.amocrm.ru",
                                     "sheets:leadflow@p.iam.gserviceaccount.com")]  # fmt: skip
    assert [k.split("#")[0] for k in keys] == ["bitrix24", "amocrm", "sheets"]
    assert not any("salon" in k for k in keys)  # no account address in the table
