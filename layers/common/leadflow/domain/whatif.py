"""«Что будет, если»: the stored leads of the last days replayed under the rules in force and under a
draft, side by side — who would get a different owner, how each specialist's load moves, which
leads would fall to the default owner or wait for a call-back at opening. Pure: the leads, the two
configs and nothing else (no staff state: both replays start from nobody's load, nobody off)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from leadflow.business import BusinessConfig
from leadflow.domain.assignment import Assignment, choose_owner
from leadflow.domain.models import CLOSED_STATUSES, Intent, Lead, LeadStatus
from leadflow.domain.panel import DryRunLedger
from leadflow.domain.rules import LeadFacts

NOBODY = "nobody eligible"


@dataclass
class WhatIf:
    leads: int = 0
    changed: list[tuple[str, str, str]] = field(default_factory=list)  # (lead id, owner now, owner then)
    load_now: Counter = field(default_factory=Counter)
    load_draft: Counter = field(default_factory=Counter)
    nobody_now: int = 0  # fell to the default owner: no rule found anyone eligible
    nobody_draft: int = 0
    callback_now: int = 0  # came off hours: a call-back at opening
    callback_draft: int = 0

    def as_dict(self) -> dict:
        staff = sorted(set(self.load_now) | set(self.load_draft))
        return {
            "leads": self.leads,
            "changed_owner": len(self.changed),
            "changes": [{"lead_id": i, "owner_now": a, "owner_draft": b} for i, a, b in self.changed],
            "load": {s: {"now": self.load_now[s], "draft": self.load_draft[s]} for s in staff},
            "to_default_owner": {"now": self.nobody_now, "draft": self.nobody_draft},
            "night_callback": {"now": self.callback_now, "draft": self.callback_draft},
        }


def routable(lead: Lead) -> bool:
    """Leads routing gave an owner to: not the spam, not the ones still being qualified."""
    return lead.intent != Intent.not_target and lead.status not in (LeadStatus.new, LeadStatus.not_target)


def replay(leads: Iterable[Lead], now_config: BusinessConfig, draft: BusinessConfig) -> WhatIf:
    ordered = sorted((lead for lead in leads if routable(lead)), key=lambda lead: lead.received_at)
    report = WhatIf(leads=len(ordered))
    ledger_now, ledger_draft = DryRunLedger({}), DryRunLedger({})
    for lead in ordered:
        before = _owner(lead, now_config, ledger_now)
        after = _owner(lead, draft, ledger_draft)
        report.load_now[before.owner] += 1
        report.load_draft[after.owner] += 1
        report.nobody_now += NOBODY in before.reason
        report.nobody_draft += NOBODY in after.reason
        report.callback_now += before.callback_at is not None
        report.callback_draft += after.callback_at is not None
        if before.owner != after.owner:
            report.changed.append((lead.lead_id, before.owner, after.owner))
        for ledger, chosen in ((ledger_now, before), (ledger_draft, after)):
            if lead.status in CLOSED_STATUSES:  # it was closed since: its owner is free of it again
                _release(ledger, chosen.owner)
    return report


def _owner(lead: Lead, business: BusinessConfig, ledger: DryRunLedger) -> Assignment:
    facts = LeadFacts(repeat_client=False, vip="vip" in lead.tags, branch=lead.branch)
    return choose_owner(lead, facts, business, ledger, lead.received_at, None)


def _release(ledger: DryRunLedger, staff_id: str) -> None:
    state = ledger.states.get(staff_id)
    if state is not None and state.open_leads:
        ledger.states[staff_id] = state.model_copy(update={"open_leads": state.open_leads - 1})
