"""The numbers the owner cares about (the digest, `/today`, `leadflow kpi`, the panel's Сводка).
They are counted from lead facts (domain/facts.py): a lead given here becomes its fact first, so
every caller counts the same way. The same figures leave the functions as CloudWatch EMF metrics."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date
from zoneinfo import ZoneInfo

from leadflow.business import BusinessConfig
from leadflow.domain.cards import CHANNEL_LABEL
from leadflow.domain.facts import LeadFact, fact_of
from leadflow.domain.models import Lead, LeadStatus

BOOKED = {str(s) for s in (LeadStatus.booked, LeadStatus.confirmed, LeadStatus.visited, LeadStatus.no_show)}
SETTLED = {str(LeadStatus.visited), str(LeadStatus.no_show)}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return round(ordered[0], 1)
    return round(statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1], 1)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _summary(facts: list[LeadFact]) -> dict:
    targets = [f for f in facts if f.intent != "not_target"]
    first = [f.first_reply_s for f in facts if f.first_reply_s is not None]
    accept = [f.accept_s for f in facts if f.accept_s is not None]
    booked = [f for f in targets if f.status in BOOKED or f.appointment]
    settled = [f for f in booked if f.status in SETTLED]
    no_show = sum(1 for f in settled if f.status == LeadStatus.no_show)
    owned = [f for f in targets if f.owner]
    breached = [f for f in owned if f.sla_breached]
    return {
        "leads": len(facts),
        "first_response_s": {"p50": percentile(first, 50), "p90": percentile(first, 90)},
        "acceptance_s": {"p50": percentile(accept, 50), "p90": percentile(accept, 90)},
        "booked": len(booked),
        "conversion": _rate(len(booked), len(targets)),
        "no_show": no_show,
        "no_show_rate": _rate(no_show, len(settled)),
        "sla_breaches": len(breached),
        "sla_breach_rate": _rate(len(breached), len(owned)),
    }


def _grouped(facts: list[LeadFact], key: Callable[[LeadFact], str | None]) -> dict[str, dict]:
    groups: dict[str, list[LeadFact]] = {}
    for fact in facts:
        groups.setdefault(key(fact) or "—", []).append(fact)
    return {name: _summary(items) for name, items in sorted(groups.items())}


def as_facts(items: Iterable[Lead | LeadFact]) -> list[LeadFact]:
    return [item if isinstance(item, LeadFact) else fact_of(item) for item in items]


def compute_kpis(items: Iterable[Lead | LeadFact], tz: ZoneInfo | None = None) -> dict:
    facts = as_facts(items)
    zone = tz or UTC
    result = _summary(facts)
    result.update(
        {
            "temperature": dict(Counter(f.temperature or "—" for f in facts)),
            "by_hour": dict(sorted(Counter(f.received_at.astimezone(zone).hour for f in facts).items())),
            "confirmed": sum(1 for f in facts if f.status == LeadStatus.confirmed),
            "by_channel": _grouped(facts, lambda f: f.channel),
            "by_source": _grouped(facts, lambda f: f.utm_source or f.source),
            "by_campaign": _grouped(facts, lambda f: f.campaign),
            "by_owner": _grouped(facts, lambda f: f.owner),
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
