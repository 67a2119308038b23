"""«Что будет, если»: the stored leads of the last days replayed under the rules in force and under a
draft, side by side — who would get a different owner, how each specialist's load moves, which
leads would fall to the default owner, wait for a call-back at opening, or breach the SLA. Pure:
the leads, the two configs and nothing else (no staff state: both replays start from nobody's
load, nobody off).

A replayed lead *would breach the SLA* under a config when the owner that config gives it could
not answer in time, judged from the stored facts alone:

- its SLA is that config's minutes for the lead's temperature (``question_min`` for a question),
  counted in its branch's opening minutes from ``received_at`` (as the SLA timer counts them);
- the owner can first answer at the first moment at or after ``received_at`` when they are on
  shift (their own shifts, else the branch's hours; the branch's days off and holidays count);
- it breaches when that moment is past the SLA's end, when the owner is nobody on the staff or
  not active, or when the lead took the owner past their capacity (only the default owner is
  ever given a lead beyond it).

It assumes an owner on shift answers at once, so it is a lower bound: it counts the breaches the
rules and shifts make certain, not the ones slow replies add."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from leadflow.business import BusinessConfig
from leadflow.domain.assignment import Assignment, choose_owner, shift_calendar
from leadflow.domain.models import CLOSED_STATUSES, Intent, Lead, LeadStatus
from leadflow.domain.panel import DryRunLedger
from leadflow.domain.plans import sla_due
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
    breach_now: list[str] = field(default_factory=list)  # lead ids that would breach the SLA
    breach_draft: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        staff = sorted(set(self.load_now) | set(self.load_draft))
        return {
            "leads": self.leads,
            "changed_owner": len(self.changed),
            "changes": [{"lead_id": i, "owner_now": a, "owner_draft": b} for i, a, b in self.changed],
            "load": {s: {"now": self.load_now[s], "draft": self.load_draft[s]} for s in staff},
            "to_default_owner": {"now": self.nobody_now, "draft": self.nobody_draft},
            "night_callback": {"now": self.callback_now, "draft": self.callback_draft},
            "sla_breach": {
                "now": len(self.breach_now),
                "draft": len(self.breach_draft),
                "draft_leads": list(self.breach_draft),
            },
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
        if would_breach(lead, now_config, before, ledger_now):
            report.breach_now.append(lead.lead_id)
        if would_breach(lead, draft, after, ledger_draft):
            report.breach_draft.append(lead.lead_id)
        if before.owner != after.owner:
            report.changed.append((lead.lead_id, before.owner, after.owner))
        for ledger, chosen in ((ledger_now, before), (ledger_draft, after)):
            if lead.status in CLOSED_STATUSES:  # it was closed since: its owner is free of it again
                _release(ledger, chosen.owner)
    return report


def would_breach(lead: Lead, business: BusinessConfig, chosen: Assignment, ledger: DryRunLedger) -> bool:
    """The module's definition of an SLA breach, for one lead just given to ``chosen.owner``."""
    member = business.staff_member(chosen.owner)
    if member is None or not member.active:
        return True
    if ledger.state([member.id])[member.id].open_leads > member.capacity:
        return True
    due = sla_due(business, lead, lead.received_at)
    first_answer = shift_calendar(member, business).next_open(lead.received_at)
    return first_answer is None or first_answer > due


def _owner(lead: Lead, business: BusinessConfig, ledger: DryRunLedger) -> Assignment:
    facts = LeadFacts(repeat_client=False, vip="vip" in lead.tags, branch=lead.branch)
    return choose_owner(lead, facts, business, ledger, lead.received_at, None)


def _release(ledger: DryRunLedger, staff_id: str) -> None:
    state = ledger.states.get(staff_id)
    if state is not None and state.open_leads:
        ledger.states[staff_id] = state.model_copy(update={"open_leads": state.open_leads - 1})
