"""How the CLI prints the owner's numbers (`leadflow kpi`, the end of `leadflow demo`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    header, *lines = aligned(rows)
    out = [header]
    for line, reason in zip(lines, reasons, strict=True):
        out.append(line)
        if reason:
            out.append(f"    why: {reason}")
    return "\n".join(out)


def aligned(rows: Sequence[Sequence[object]], max_width: int | None = None) -> list[str]:
    """Rows as lines of left-aligned columns; a cell longer than ``max_width`` is cut with «…»."""

    def fit(cell: object) -> str:
        text = " ".join(str(cell).split())
        return text if max_width is None or len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[fit(cell) for cell in row] for row in rows]
    width = max((len(row) for row in cells), default=0)
    cells = [row + [""] * (width - len(row)) for row in cells]
    widths = [max(len(row[i]) for row in cells) for i in range(width)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def print_kpis(k: dict, business: BusinessConfig | None = None) -> None:
    """The owner's numbers in plain words; staff by name when the business config is known."""

    def fmt(seconds: float | None) -> str:
        if seconds is None:
            return "-"
        return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.0f} min"

    def pct(rate: float | None) -> str:
        return "-" if rate is None else f"{rate * 100:.0f}%"

    temperature = " · ".join(f"{name} {count}" for name, count in k["temperature"].items()) or "-"
    print(f"leads: {k['leads']} ({temperature})")
    first, accepted = k["first_response_s"], k["acceptance_s"]
    print(f"first reply to the client: median {fmt(first['p50'])}, 9 in 10 within {fmt(first['p90'])}")
    print(f"taken by staff («Беру»): median {fmt(accepted['p50'])}, 9 in 10 within {fmt(accepted['p90'])}")
    print(f"booked: {k['booked']} (conversion {pct(k['conversion'])}) · confirmed: {k['confirmed']} · "
          f"no-shows: {pct(k['no_show_rate'])} · answered later than the SLA: {k['sla_breaches']} "
          f"({pct(k['sla_breach_rate'])})")  # fmt: skip
    for title, key in (
        ("by channel", "by_channel"),
        ("by source", "by_source"),
        ("by campaign (utm_campaign)", "by_campaign"),
        ("by specialist", "by_owner"),
    ):
        groups = {name: v for name, v in k.get(key, {}).items() if key != "by_campaign" or name != "—"}
        if not groups:
            continue
        print(f"{title}:")
        for name, v in groups.items():
            label = staff_name(business, name) if key == "by_owner" and business and name != "—" else name
            print(f"  {label:<12} leads {v['leads']:>3}  first reply {fmt(v['first_response_s']['p50']):>7}  "
                  f"conversion {pct(v['conversion']):>4}  later than SLA {v['sla_breaches']}")  # fmt: skip
