"""What a CRM adapter is to the steps: ``Crm``, the outcome of a push, the retry-later error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from leadflow.business import BusinessConfig
from leadflow.domain.models import Lead


class CrmUnavailable(Exception):
    """The CRM could not be reached or refused for now; the work is retried through the queue."""


@dataclass(frozen=True)
class Pushed:
    lead_id: str
    crm_id: str | None
    entity: str | None = None  # "lead" or "deal"
    error: str | None = None
    retryable: bool = False
    mirrored: bool = False  # also in crm.mirror_sheet (MirroredCrm)


def not_pushed(lead: Lead) -> bool:
    """What ``Crm.pending`` means for a CRM with one record per lead."""
    return lead.crm_id is None and not lead.crm_error


class Crm(Protocol):
    name: str

    def pending(self, lead: Lead) -> bool:
        """Whether ``push`` still has something to record for this routed lead."""
        ...

    def push(
        self, leads: list[tuple[Lead, str | None]], business: BusinessConfig, redelivered: bool = False
    ) -> list[Pushed]:
        """Record leads (each with its owner's CRM user id); one outcome per lead, same order.
        ``redelivered``: an earlier attempt may have written records whose answer was lost."""
        ...

    def update_status(self, lead: Lead) -> None: ...

    def update_details(self, lead: Lead, business: BusinessConfig) -> None:
        """What the client said after the record was written (a phone, a name, a time): the record
        shows it; safe to repeat."""
        ...

    def raise_priority(self, lead: Lead) -> None: ...

    def reassign(self, lead: Lead, crm_user_id: str | None) -> None: ...

    def status_of(self, lead: Lead) -> str | None:
        """The lead's status as the CRM has it now (after a CRM event), in our terms; None: no opinion."""
        ...

    def mirror_status(self, lead: Lead) -> None:
        """The lead's status changed in the CRM itself (a CRM event): record it where else leads are
        kept (crm.mirror_sheet), never back in the CRM it came from."""
        ...

    def forget(self, lead: Lead) -> str | None:
        """Delete the lead's records (and its contact) in the CRM where its API allows; None when
        done (or nothing was there), else what could not be deleted and why, in words for a person."""
        ...
