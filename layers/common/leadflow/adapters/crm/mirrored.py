"""``crm.mirror_sheet``: leads go to the CRM (Bitrix24 or amoCRM) and also into the owner's own
Google sheet. The CRM stays the record (its id, its events); the sheet follows it.

A lead is pending while the CRM or the sheet still lacks it (``Lead.mirrored``), so a redelivery
completes whichever half an earlier attempt left undone, each half with its own redelivery lookup.
A sheet that is unreachable for now sends the batch round the queue like the CRM would; a sheet
that refuses for good (not shared, no such tab) is logged and never holds a lead back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from leadflow.adapters.crm.base import Crm, Pushed
from leadflow.adapters.crm.google_sheets import SheetsError
from leadflow.adapters.crm.sheets_crm import SheetsCrm
from leadflow.business import BusinessConfig
from leadflow.domain.models import Lead

log = logging.getLogger(__name__)


class MirroredCrm:
    def __init__(self, crm: Crm, sheet: SheetsCrm):
        self.crm = crm
        self.sheet = sheet
        self.name = crm.name  # staff are the CRM's users; the sheet shows their names

    def pending(self, lead: Lead) -> bool:
        return self.crm.pending(lead) or not lead.mirrored

    def push(
        self, leads: list[tuple[Lead, str | None]], business: BusinessConfig, redelivered: bool = False
    ) -> list[Pushed]:
        to_crm = [(lead, user) for lead, user in leads if self.crm.pending(lead)]
        outcomes = {o.lead_id: o for o in self.crm.push(to_crm, business, redelivered)} if to_crm else {}
        to_sheet = [(lead, user) for lead, user in leads if not lead.mirrored]
        mirrored: set[str] = set()
        if to_sheet:
            for outcome in self.sheet.push(to_sheet, business, redelivered):
                if outcome.crm_id:
                    mirrored.add(outcome.lead_id)
                else:
                    log.warning("mirror sheet refused lead %s: %s", outcome.lead_id, outcome.error)
        result = []
        for lead, _ in leads:
            outcome = outcomes.get(lead.lead_id) or Pushed(lead.lead_id, lead.crm_id, lead.crm_entity)
            result.append(replace(outcome, mirrored=lead.mirrored or lead.lead_id in mirrored))
        return result

    def _follow(self, what: str, lead: Lead, fn: Callable[[Lead], None]) -> None:
        """The sheet follows the CRM; one it refuses for good is logged (a retry would not help)."""
        if not lead.mirrored:
            return
        try:
            fn(lead.model_copy(update={"crm_id": lead.lead_id}))
        except SheetsError as exc:  # retryable ones come as CrmUnavailable and go round the queue
            log.warning("mirror sheet %s refused for lead %s: %s", what, lead.lead_id, exc)

    def update_status(self, lead: Lead) -> None:
        self.crm.update_status(lead)
        self.mirror_status(lead)

    def mirror_status(self, lead: Lead) -> None:
        self._follow("status", lead, self.sheet.update_status)

    def update_details(self, lead: Lead, business: BusinessConfig) -> None:
        self.crm.update_details(lead, business)
        self._follow("details", lead, lambda row: self.sheet.update_details(row, business))

    def raise_priority(self, lead: Lead) -> None:
        self.crm.raise_priority(lead)
        self._follow("priority", lead, self.sheet.raise_priority)

    def reassign(self, lead: Lead, crm_user_id: str | None) -> None:
        self.crm.reassign(lead, crm_user_id)
        self._follow("owner", lead, lambda row: self.sheet.reassign(row, crm_user_id))

    def status_of(self, lead: Lead) -> str | None:
        return self.crm.status_of(lead)

    def forget(self, lead: Lead) -> str | None:
        problems = [self.crm.forget(lead)]
        if lead.mirrored:
            problems.append(self.sheet.forget(lead.model_copy(update={"crm_id": lead.lead_id})))
        return "; ".join(p for p in problems if p) or None
