"""What the panel shows, as pure functions: who sees what, "who would get this lead" without
touching anybody's load, and the charts (SVG drawn here, so a phone needs no script)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape

from leadflow.business import BusinessConfig, StaffMember
from leadflow.domain.assignment import Assignment, choose_owner
from leadflow.domain.facts import LeadFact
from leadflow.domain.models import Lead, StaffState
from leadflow.domain.rules import LeadFacts, works_in

ROLE_LABEL = {"owner": "владелец", "senior": "старший", "manager": "менеджер", "specialist": "специалист"}
WEEKDAYS = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")


# --------------------------------------------------------------------------- who sees what


def sees_all_leads(member: StaffMember) -> bool:
    return member.role in ("owner", "senior")


def sees_lead(member: StaffMember, lead: Lead | LeadFact) -> bool:
    """Owner and seniors every lead; a manager their branch's; everybody their own."""
    if lead.owner == member.id or sees_all_leads(member):
        return True
    return member.role == "manager" and works_in(member, lead.branch)


def sees_staff(member: StaffMember, other: StaffMember) -> bool:
    if sees_all_leads(member) or other.id == member.id:
        return True
    return member.role == "manager" and (member.branch is None or other.branch == member.branch)


def sees_problems(member: StaffMember) -> bool:
    return member.role in ("owner", "senior")


def manages_staff(member: StaffMember) -> bool:
    """Deactivating a member and redriving dead letters: the business owner only."""
    return member.role == "owner"


# --------------------------------------------------------------------------- what-if


class DryRunLedger:
    """A StaffLedger over a snapshot: choosing an owner here changes nobody's real load."""

    def __init__(self, states: dict[str, StaffState], tickets: dict[str, int] | None = None):
        self.states = {k: v.model_copy() for k, v in states.items()}
        self.tickets = dict(tickets or {})

    def state(self, staff_ids: list[str]) -> dict[str, StaffState]:
        return {s: self.states.get(s) or StaffState(staff_id=s) for s in staff_ids}

    def next_ticket(self, group: str) -> int:
        self.tickets[group] = self.tickets.get(group, 0) + 1
        return self.tickets[group]

    def take_lead(self, staff_id: str, lead_id: str, capacity: int | None = None) -> bool:
        current = self.states.get(staff_id) or StaffState(staff_id=staff_id)
        if capacity is not None and current.open_leads >= capacity:
            return False
        self.states[staff_id] = current.model_copy(update={"open_leads": current.open_leads + 1})
        return True


def who_would_get(
    lead: Lead, business: BusinessConfig, states: dict[str, StaffState], now: datetime, vip: bool = False
) -> Assignment:
    """The owner the rules would pick for ``lead`` now, with the staff's current load and shifts."""
    facts = LeadFacts(repeat_client=False, vip=vip, branch=lead.branch)
    return choose_owner(lead, facts, business, DryRunLedger(states), now, None)


# --------------------------------------------------------------------------- charts


def bar_chart(rows: Iterable[tuple[str, float]], unit: str = "", width: int = 320) -> str:
    """Horizontal bars, one row each: label, bar, value — reads on a 360 px phone."""
    rows = list(rows)
    if not rows:
        return ""
    top = max((value for _, value in rows), default=0) or 1
    row_h, label_w, value_w = 22, 110, 54
    bar_w = width - label_w - value_w
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {row_h * len(rows)}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">'
    ]
    for i, (label, value) in enumerate(rows):
        y = i * row_h
        w = max(bar_w * value / top, 1 if value else 0)
        shown = f"{value:g}{unit}"
        parts.append(
            f'<text x="0" y="{y + 15}" font-size="12">{escape(label[:16])}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="14" rx="2" fill="#3b82f6"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" font-size="12">{escape(shown)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def heat_map(counts: dict[tuple[int, int], int], width: int = 320) -> str:
    """Weekday × hour of the leads received: darker is busier."""
    if not counts:
        return ""
    top = max(counts.values()) or 1
    left, cell_w, cell_h = 22, (width - 22) / 24, 14
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {cell_h * 7 + 14}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    for day in range(7):
        y = day * cell_h
        parts.append(f'<text x="0" y="{y + 11}" font-size="10">{WEEKDAYS[day]}</text>')
        for hour in range(24):
            n = counts.get((day, hour), 0)
            shade = 0.08 + 0.92 * n / top if n else 0.03
            parts.append(
                f'<rect x="{left + hour * cell_w:.1f}" y="{y}" width="{cell_w - 1:.1f}" height="{cell_h - 1}" '
                f'fill="#1d4ed8" fill-opacity="{shade:.2f}"><title>{WEEKDAYS[day]} {hour}:00 — {n}</title></rect>'
            )
    for hour in range(0, 24, 6):
        parts.append(
            f'<text x="{left + hour * cell_w:.1f}" y="{cell_h * 7 + 12}" font-size="10">{hour}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def invite_qr_svg(url: str) -> str:
    """The invite link as a QR code, an inline SVG a phone's camera reads off the screen."""
    import segno  # imported here: only the Сотрудники page after «Пригласить» draws one

    return str(segno.make(url, error="m").svg_inline(scale=4, border=2, dark="#111", light="#fff"))


def saved_by(business: BusinessConfig, who: str) -> str:
    """Who stored a config version, as the owner reads it: «Вера (панель)», not ``panel:vera``."""
    if who.startswith("panel:"):
        staff_id, _, rest = who.removeprefix("panel:").partition(" ")
        member = business.staff_member(staff_id)
        return f"{member.name if member else staff_id} (панель)" + (f" {rest}" if rest else "")
    if who.startswith("leadflow"):
        return f"командой {who}"
    return who
