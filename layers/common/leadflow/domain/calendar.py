"""Business hours in a branch's time zone: open or not, next opening, SLA minutes counted in
business time. Russian public holidays come from the `holidays` library; closing on them is
opt-in per branch (salons work on 8 March); a branch's own days off and transferred working
days come from config.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from leadflow.business import WEEKDAYS, Branch, BusinessConfig, TimeRange, WeekHours

SEARCH_DAYS = 21  # a business closed for three weeks in a row has no "next opening" worth waiting for


@functools.cache
def _russian_holidays(year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays("RU", years=year).keys())


def _minutes(value: str) -> int:
    hours, minutes = (int(p) for p in value.split(":"))
    return hours * 60 + minutes


def _at(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """Local wall time ``minutes`` after ``day``'s midnight, in UTC (24:00 is the next midnight).

    Everything is compared and added in UTC so that a DST change inside an interval counts real
    minutes (Python adds wall-clock time to datetimes that share one ZoneInfo)."""
    extra_days, rest = divmod(minutes, 24 * 60)
    local = datetime.combine(day + timedelta(days=extra_days), time(rest // 60, rest % 60), tz)
    return local.astimezone(UTC)


def _merged(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted, overlaps joined: a bar's Friday 20:00-02:00 and Saturday 00:00-03:00 are one stretch,
    and ranges listed out of order in the config still give the earliest opening first."""
    result: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if result and start <= result[-1][1]:
            result[-1] = (result[-1][0], max(result[-1][1], end))
        else:
            result.append((start, end))
    return result


class Calendar:
    """Opening intervals of one schedule (a branch's hours or a staff member's shifts)."""

    def __init__(self, hours: WeekHours, tz: ZoneInfo, branch: Branch | None = None):
        self.hours = hours
        self.tz = tz
        self.branch = branch

    @classmethod
    def for_branch(cls, business: BusinessConfig, branch_id: str | None = None) -> Calendar:
        branch = business.branch(branch_id)
        if branch is None and business.branches and branch_id is None:
            branch = business.branches[0]
        tz = ZoneInfo(branch.timezone) if branch and branch.timezone else business.tz
        return cls(branch.hours if branch and branch.hours else business.hours, tz, branch)

    def _ranges(self, day: date) -> list[TimeRange]:
        branch = self.branch
        if branch and day in branch.days_off:
            return []
        weekday = WEEKDAYS[day.weekday()]
        if branch and day in branch.extra_working_days:
            # A transferred working day works to the usual weekday schedule (Monday's, as in Russia).
            return self.hours.get(weekday) or self.hours.get("mon") or []
        if branch and branch.closed_on_public_holidays and day in _russian_holidays(day.year):
            return []
        return self.hours.get(weekday, [])

    def ranges_on(self, day: date) -> list[TimeRange]:
        """The opening hours of one day as configured (none on a day off or a closed holiday)."""
        return self._ranges(day)

    def intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """Opening intervals that start on ``day`` (local), as UTC datetimes; overnight ranges end next day."""
        result = []
        for r in self._ranges(day):
            start, end = _minutes(r.start), _minutes(r.end)
            if end <= start:
                end += 24 * 60  # "20:00-02:00" closes the next night
            result.append((_at(day, start, self.tz), _at(day, end, self.tz)))
        return result

    def _around(self, at: datetime, days: int = SEARCH_DAYS) -> list[tuple[datetime, datetime]]:
        local = at.astimezone(self.tz).date()
        return _merged([iv for d in range(-1, days) for iv in self.intervals(local + timedelta(days=d))])

    def is_open(self, at: datetime) -> bool:
        # Yesterday's overnight range and today's ranges are all that can cover ``at``.
        return any(start <= at < end for start, end in self._around(at, days=1))

    def next_open(self, at: datetime) -> datetime | None:
        """``at`` itself when open, else the next opening; None if closed for SEARCH_DAYS."""
        for start, end in self._around(at):
            if end > at:
                return max(start, at)
        return None

    def add_business_minutes(self, start: datetime, minutes: int) -> datetime:
        """The moment ``minutes`` of opening time after ``start``; a lead at 22:00 is due that many
        minutes after the next opening."""
        start = start.astimezone(UTC)
        left = timedelta(minutes=minutes)
        for iv_start, iv_end in self._around(start):
            if iv_end <= start:
                continue
            begin = max(iv_start, start)
            if begin + left <= iv_end:
                return begin + left
            left -= iv_end - begin
        return start + timedelta(minutes=minutes)  # no opening in sight: count wall time
