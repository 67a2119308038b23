"""What the assistant needs from a booking system, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from leadflow.business import Service
from leadflow.domain.models import Lead
from leadflow.domain.schedule import Slot


class SlotTaken(Exception):
    """Somebody else took the slot between the offer and the pick."""


class BookingUnavailable(Exception):
    """The booking system did not answer as it should; ``retryable`` when trying later may help."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Booked:
    slot: Slot
    ref: str  # the booking's id in the system (cancel, move and its webhooks name it)


class BookingSystem(Protocol):
    name: str

    def free_slots(
        self,
        service: Service,
        day: date,
        now: datetime,
        branch: str | None = None,
        lead_id: str | None = None,
    ) -> list[Slot]:
        """Every free slot of the service on ``day`` (local), time then master; ``lead_id``'s own
        holds count as free (its offer is being made again)."""
        ...

    def hold(self, slot: Slot, lead_id: str, now: datetime) -> bool:
        """Keep an offered slot for this lead for ``booking.hold_min``; False when it is not free."""
        ...

    def release(self, slots: list[Slot], lead_id: str, keep: Slot | None = None) -> None:
        """Give back this lead's holds (the other offered slots, once ``keep`` is booked)."""
        ...

    def book(self, slot: Slot, lead: Lead, now: datetime) -> Booked:
        """Book the slot for the lead (idempotent for the same lead); raises SlotTaken."""
        ...

    def cancel(self, lead: Lead) -> None:
        """Free the lead's booked slot (a cancel or before a move)."""
        ...
