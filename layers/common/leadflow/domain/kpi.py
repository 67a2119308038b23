"""The numbers the owner cares about, from the leads themselves (the digest, `/today`,
`leadflow kpi`). The same figures leave the functions as CloudWatch EMF metrics."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date
from zoneinfo import ZoneInfo

from leadflow.business import BusinessConfig
from leadflow.domain.cards import CHANNEL_LABEL
from leadflow.domain.models import Lead, LeadStatus

BOOKED = {LeadStatus.booked, LeadStatus.confirmed, LeadStatus.visited, LeadStatus.no_show}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return round(ordered[0], 1)
    return round(statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1], 1)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _summary(leads: list[Lead]) -> dict:
    targets = [lead for lead in leads if lead.intent != "not_target"]
    first = [
        (lead.first_reply_at - lead.received_at).total_seconds() for lead in leads if lead.first_reply_at
    ]
    accept = [(lead.accepted_at - lead.received_at).total_seconds() for lead in leads if lead.accepted_at]
    booked = [lead for lead in targets if lead.status in BOOKED or lead.appointment_at]
    settled = [lead for lead in booked if lead.status in (LeadStatus.visited, LeadStatus.no_show)]
    owned = [lead for lead in targets if lead.owner]
    breached = [lead for lead in owned if "sla_breached" in lead.tags]
    return {
        "leads": len(leads),
        "first_response_s": {"p50": percentile(first, 50), "p90": percentile(first, 90)},
        "acceptance_s": {"p50": percentile(accept, 50), "p90": percentile(accept, 90)},
        "booked": len(booked),
        "conversion": _rate(len(booked), len(targets)),
        "no_show": sum(1 for lead in settled if lead.status == LeadStatus.no_show),
        "no_show_rate": _rate(sum(1 for lead in settled if lead.status == LeadStatus.no_show), len(settled)),
        "sla_breaches": len(breached),
        "sla_breach_rate": _rate(len(breached), len(owned)),
    }


def _grouped(leads: list[Lead], key: Callable[[Lead], str | None]) -> dict[str, dict]:
    groups: dict[str, list[Lead]] = {}
    for lead in leads:
        groups.setdefault(key(lead) or "—", []).append(lead)
    return {name: _summary(items) for name, items in sorted(groups.items())}


def compute_kpis(leads: Iterable[Lead], tz: ZoneInfo | None = None) -> dict:
    leads = list(leads)
    zone = tz or UTC
    result = _summary(leads)
    result.update(
        {
            "temperature": dict(Counter(lead.temperature or "—" for lead in leads)),
            "by_hour": dict(
                sorted(Counter(lead.received_at.astimezone(zone).hour for lead in leads).items())
            ),
            "confirmed": sum(1 for lead in leads if lead.status == LeadStatus.confirmed),
            "by_channel": _grouped(leads, lambda lead: lead.channel),
            "by_source": _grouped(leads, lambda lead: lead.utm.source or lead.source),
            "by_campaign": _grouped(leads, lambda lead: lead.utm.campaign),
            "by_owner": _grouped(leads, lambda lead: lead.owner),
        }
    )
    return result


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.0f} с" if seconds < 120 else f"{seconds / 60:.0f} мин"


def today_text(k: dict) -> str:
    return (
        f"Сегодня: лидов {k['leads']}, записано {k['booked']}, "
        f"первый ответ p50 {_minutes(k['first_response_s']['p50'])}, нарушений SLA {k['sla_breaches']}."
    )


def digest_text(k: dict, day: date, business: BusinessConfig | None = None) -> str:
    """The owner's evening message: channels by their names, staff by theirs (not internal ids)."""
    temps = k["temperature"]
    peak = sorted(k["by_hour"].items(), key=lambda kv: -kv[1])[:3]

    def who(staff_id: str) -> str:
        member = business.staff_member(staff_id) if business else None
        return member.name if member else staff_id

    lines = [
        f"📊 Итоги {day:%d.%m}",
        f"Лидов: {k['leads']} (🔥 {temps.get('hot', 0)} · 🌤 {temps.get('warm', 0)} · ❄️ {temps.get('cold', 0)})",
        "По каналам: "
        + (
            ", ".join(f"{CHANNEL_LABEL.get(name, name)} {v['leads']}" for name, v in k["by_channel"].items())
            or "—"
        ),
        "Пиковые часы: " + (", ".join(f"{hour}:00 ({n})" for hour, n in peak) or "—"),
        f"Первый ответ: медиана {_minutes(k['first_response_s']['p50'])}, p90 {_minutes(k['first_response_s']['p90'])}",
        f"Записано: {k['booked']}, подтвердили: {k['confirmed']}, не пришли: {k['no_show']}",
        f"Нарушений SLA: {k['sla_breaches']}",
        "Нагрузка: "
        + (", ".join(f"{who(name)} {v['leads']}" for name, v in k["by_owner"].items() if name != "—") or "—"),
    ]
    return "\n".join(lines)
