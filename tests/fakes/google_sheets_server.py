"""Google's token endpoint and the Sheets API v4 values methods: the stand-in lives in the local
stack's package (leadflow_local.sheets_standin), where `leadflow demo --crm sheets` runs it too."""

from leadflow_local.sheets_standin import (
    SCOPE,
    TOKEN_AUDIENCE,
    ApiError,
    GoogleSheets,
    Spreadsheet,
    col_index,
    col_letters,
    service_account_json,
)

__all__ = [
    "SCOPE", "TOKEN_AUDIENCE", "ApiError", "GoogleSheets", "Spreadsheet", "col_index", "col_letters",
    "service_account_json",
]  # fmt: skip
