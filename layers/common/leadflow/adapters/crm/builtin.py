"""The built-in CRM: the leads table itself, shown by `leadflow leads` and the panel."""

from __future__ import annotations

from leadflow.adapters.crm.base import Pushed, not_pushed
from leadflow.business import BusinessConfig
from leadflow.domain.models import Lead


class BuiltinCrm:
    """The leads table is the CRM: nothing to push, nothing to keep in sync."""

    name = "builtin"

    def pending(self, lead: Lead) -> bool:
        return not_pushed(lead)

    def push(
        self, leads: list[tuple[Lead, str | None]], business: BusinessConfig, redelivered: bool = False
    ) -> list[Pushed]:
        return [Pushed(lead.lead_id, None) for lead, _ in leads]

    def update_status(self, lead: Lead) -> None:
        return None

    def update_details(self, lead: Lead, business: BusinessConfig) -> None:
        return None

    def raise_priority(self, lead: Lead) -> None:
        return None

    def reassign(self, lead: Lead, crm_user_id: str | None) -> None:
        return None

    def status_of(self, lead: Lead) -> str | None:
        return None

    def mirror_status(self, lead: Lead) -> None:
        return None

    def forget(self, lead: Lead) -> str | None:
        return None  # the leads table is the CRM: erased with it
