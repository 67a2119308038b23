"""A lead's facts: the few fields the numbers and the panel's list need, kept per day in the
stats table as leads change (steps/tally.py) so the panel reads days, not every lead.

``compute_kpis`` works on facts only; a lead goes through ``fact_of`` first, so the digest,
``leadflow kpi`` and the panel count the same way by construction."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime

from leadflow.domain.models import Lead


@dataclass(frozen=True, slots=True)
class LeadFact:
    lead_id: str
    version: int
    received_at: datetime
    channel: str
    status: str
    intent: str | None = None
    temperature: str | None = None
    owner: str | None = None
    branch: str | None = None
    source: str | None = None
    utm_source: str | None = None
    campaign: str | None = None
    service: str | None = None
    first_reply_s: float | None = None  # seconds from received to the first answer
    accept_s: float | None = None  # seconds from received to «Беру»
    appointment: bool = False  # a visit time is set
    sla_breached: bool = False
    name: str | None = None  # the list row; gone once the lead is anonymised
    phone: str | None = None

    def to_json(self) -> str:
        """``[FORMAT, value, …]`` in field order, trailing empties left out: a day's thousand facts
        stay small to store, to read and to parse."""
        values = [getattr(self, name) for name in FIELDS]
        values[RECEIVED_AT] = self.received_at.isoformat()
        while values and values[-1] in (None, False):
            values.pop()
        return json.dumps([FORMAT, *values], ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LeadFact:
        data = json.loads(text)
        if not isinstance(data, list) or data[:1] != [FORMAT]:
            raise ValueError("not a lead fact of this format")
        values = data[1 : 1 + len(FIELDS)]  # a newer writer's extra fields: ignored
        values[RECEIVED_AT] = datetime.fromisoformat(values[RECEIVED_AT])
        return cls(*values)


FIELDS = tuple(f.name for f in fields(LeadFact))
RECEIVED_AT = FIELDS.index("received_at")
FORMAT = 1


def fact_of(lead: Lead) -> LeadFact:
    def since_received(moment: datetime | None) -> float | None:
        return (moment - lead.received_at).total_seconds() if moment else None

    return LeadFact(
        lead_id=lead.lead_id,
        version=lead.version,
        received_at=lead.received_at,
        channel=str(lead.channel),
        status=str(lead.status),
        intent=str(lead.intent) if lead.intent else None,
        temperature=str(lead.temperature) if lead.temperature else None,
        owner=lead.owner,
        branch=lead.branch,
        source=lead.source,
        utm_source=lead.utm.source,
        campaign=lead.utm.campaign,
        service=lead.service,
        first_reply_s=since_received(lead.first_reply_at),
        accept_s=since_received(lead.accepted_at),
        appointment=lead.appointment_at is not None,
        sla_breached="sla_breached" in lead.tags,
        name=lead.contact.name,
        phone=lead.contact.phone,
    )
