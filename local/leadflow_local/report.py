"""How the CLI prints the owner's numbers (`leadflow kpi`, the end of `leadflow demo`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from leadflow.business import BusinessConfig
from leadflow.domain.cards import staff_name
from leadflow.domain.models import Lead

NextTimer = Callable[[Lead], "tuple[str, datetime] | None"]
TIMER_NAMES = {
    "sla": "SLA",
    "route_wait": "route",
    "nudge": "nudge",
    "appointment": "reminder",
    "winback": "win-back",
}


def leads_table(leads: list[Lead], business: BusinessConfig, next_timer: NextTimer) -> str:
    """`leadflow leads`: a header row, aligned columns, and under each lead why it has its owner."""
    tz = business.tz
    rows = [
        (
            "LEAD",
            "RECEIVED",
            "CHANNEL",
            "STATUS",
            "TEMP",
            "SERVICE",
            "WHEN",
            "BRANCH",
            "OWNER",
            "NEXT",
            "CLIENT",
        )
    ]
    reasons = []
    for lead in leads:
        when = " ".join(v for v in (str(lead.preferred_date or ""), lead.preferred_time or "") if v)
        timer = next_timer(lead)
        rows.append((
            lead.lead_id, f"{lead.received_at.astimezone(tz):%d.%m %H:%M}", lead.channel, str(lead.status),
            lead.temperature or "-", lead.service or "-", when or "-", lead.branch or "-",
            staff_name(business, lead.owner) if lead.owner else "-",
            f"{TIMER_NAMES.get(timer[0], timer[0])} {timer[1].astimezone(tz):%d.%m %H:%M}" if timer else "-",
            lead.contact.name or "",
        ))  # fmt: skip
        reasons.append(lead.assignment_reason)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(rows[0], widths, strict=True)).rstrip()]
    for row, reason in zip(rows[1:], reasons, strict=True):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if reason:
            lines.append(f"    why: {reason}")
    return "\n".join(lines)


def print_kpis(k: dict) -> None:
    def fmt(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds:.1f}s"

    def pct(rate: float | None) -> str:
        return "-" if rate is None else f"{rate * 100:.0f}%"

    print(f"leads {k['leads']} · temperature {k['temperature']}")
    print(f"first response p50 {fmt(k['first_response_s']['p50'])} p90 {fmt(k['first_response_s']['p90'])} · "
          f"acceptance p50 {fmt(k['acceptance_s']['p50'])} p90 {fmt(k['acceptance_s']['p90'])}")  # fmt: skip
    print(f"booked {k['booked']} (conversion {pct(k['conversion'])}) · confirmed {k['confirmed']} · "
          f"no-show {pct(k['no_show_rate'])} · SLA breaches {k['sla_breaches']} ({pct(k['sla_breach_rate'])})")  # fmt: skip
    for title, key in (
        ("by channel", "by_channel"),
        ("by source", "by_source"),
        ("by specialist", "by_owner"),
    ):
        print(f"{title}:")
        for name, v in k[key].items():
            print(f"  {name:<12} leads {v['leads']:>3}  first reply p50 {fmt(v['first_response_s']['p50']):>7}  "
                  f"conversion {pct(v['conversion']):>4}  SLA breaches {v['sla_breaches']}")  # fmt: skip
