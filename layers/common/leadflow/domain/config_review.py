"""What `leadflow config check` warns about: a config that is valid but will not do what its author
meant — a service nobody can do, a rule that can never fire, a branch nobody watches.

Each warning names where in the config it is (so the CLI can print the line) and says it in words a
salon's helper understands.
"""

from __future__ import annotations

from datetime import date, timedelta

from leadflow.business import WEEKDAYS, BusinessConfig, Loc, RoutingRule, StaffMember
from leadflow.domain.calendar import Calendar

# A week to look at shifts against opening hours (any Monday: only weekdays matter here).
_A_WEEK = [date(2026, 6, 1) + timedelta(days=i) for i in range(7)]  # no public holiday in it


def config_warnings(cfg: BusinessConfig) -> list[tuple[Loc, str]]:
    return [
        *_staff_without_branch(cfg),
        *_branches_without_a_manager(cfg),
        *_services_nobody_does(cfg),
        *_rules_that_never_fire(cfg),
        *_shifts_outside_hours(cfg),
        *_fields_that_do_nothing(cfg),
    ]


def _fields_that_do_nothing(cfg: BusinessConfig) -> list[tuple[Loc, str]]:
    """Accepted for configs written for earlier versions, but nothing reads them."""
    unread = [
        (("sla", "remind_owner_after_min"), cfg.sla.remind_owner_after_min,
         "is not used: the owner is reminded when the lead's SLA runs out (hot_min/warm_min/cold_min)"),
        (("sms", "provider"), cfg.sms.provider,
         "is not used: the provider is the stack's SMS_PROVIDER parameter, with its secrets"),
        (("sms", "sender"), cfg.sms.sender, "is not used: the sender name is the stack's SMS_SENDER parameter"),
    ]  # fmt: skip
    return [(loc, f"{'.'.join(map(str, loc))} {why}") for loc, value, why in unread if value]


def _staff_without_branch(cfg: BusinessConfig) -> list[tuple[Loc, str]]:
    if len(cfg.branches) < 2:
        return []
    return [
        (("staff", i), f"staff {member.id} has no branch: they work in every branch")
        for i, member in enumerate(cfg.staff)
        if member.branch is None and member.role != "owner"
    ]


def _branches_without_a_manager(cfg: BusinessConfig) -> list[tuple[Loc, str]]:
    warnings = []
    for i, branch in enumerate(cfg.branches):
        watchers = [
            m for m in cfg.staff
            if m.active and m.role in ("manager", "senior", "owner") and m.branch in (None, branch.id)
        ]  # fmt: skip
        if not watchers:
            warnings.append(
                (
                    ("branches", i),
                    f"branch {branch.id} has no manager or senior: nobody is told when its leads wait",
                )
            )
    return warnings


def _can_do(member: StaffMember, service_id: str, group: str | None) -> bool:
    return member.active and (not member.skills or service_id in member.skills or (group in member.skills))


def _services_nobody_does(cfg: BusinessConfig) -> list[tuple[Loc, str]]:
    specialists = [m for m in cfg.staff if m.role == "specialist"]
    if not specialists:
        return []
    return [
        (("services", i), f"service {service.id}: no active specialist has it in their skills")
        for i, service in enumerate(cfg.services)
        if not any(_can_do(m, service.id, service.group) for m in specialists)
    ]


def _narrower(earlier: RoutingRule, later: RoutingRule) -> bool:
    """Every lead ``later`` matches, ``earlier`` matches too (so ``later`` never gets one)."""
    for field, wanted in earlier.match.model_dump().items():
        if wanted is None:
            continue
        theirs = getattr(later.match, field)
        if theirs is None:
            return False
        if isinstance(wanted, list) and not set(theirs) <= set(wanted):
            return False
        if not isinstance(wanted, list) and theirs != wanted:
            return False
    return True


def _rules_that_never_fire(cfg: BusinessConfig) -> list[tuple[Loc, str]]:
    warnings = []
    for j, later in enumerate(cfg.routing):
        for earlier in cfg.routing[:j]:
            if _narrower(earlier, later):
                warnings.append(
                    (
                        ("routing", j),
                        f"routing rule {later.name!r} never fires: rule {earlier.name!r} above it takes all its leads",
                    )
                )
                break
    return warnings


def _shifts_outside_hours(cfg: BusinessConfig) -> list[tuple[Loc, str]]:
    warnings = []
    for i, member in enumerate(cfg.staff):
        if member.shifts is None:
            continue
        hours = Calendar.for_branch(cfg, member.branch)
        shifts = Calendar(member.shifts, hours.tz, hours.branch)
        for day in _A_WEEK:
            opening = hours.intervals(day)
            for start, end in shifts.intervals(day):
                if not any(o_start <= start and end <= o_end for o_start, o_end in opening):
                    weekday = WEEKDAYS[day.weekday()]
                    start, end = start.astimezone(hours.tz), end.astimezone(hours.tz)
                    where = f" of branch {member.branch}" if member.branch else ""
                    warnings.append(
                        (
                            ("staff", i, "shifts", weekday),
                            f"staff {member.id}: the {weekday} shift {start:%H:%M}-{end:%H:%M} is outside the opening hours{where}",
                        )
                    )
    return warnings
