"""Business hours in a branch's time zone: open or not, next opening, SLA minutes counted in
business time. Russian public holidays come from the `holidays` library; closing on them is
opt-in per branch (salons work on 8 March); a branch's own days off and transferred working
days come from config.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from leadflow.config import WEEKDAYS, Branch, BusinessConfig, TimeRange, WeekHours

SEARCH_DAYS = 21  # a business closed for three weeks in a row has no "next opening" worth waiting for


@functools.cache
def _russian_holidays(year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays("RU", years=year).keys())


def _time(value: str) -> time:
    hours, minutes = (int(p) for p in value.split(":"))
    return time(23, 59, 59) if hours == 24 else time(hours, minutes)


class Calendar:
    """Opening intervals of one schedule (a branch's hours or a staff member's shifts)."""

    def __init__(self, hours: WeekHours, tz: ZoneInfo, branch: Branch | None = None):
        self.hours = hours
        self.tz = tz
        self.branch = branch

    @classmethod
    def for_branch(cls, business: BusinessConfig, branch_id: str | None = None) -> Calendar:
        branch = next((b for b in business.branches if b.id == branch_id), None)
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

    def intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """Opening intervals that start on ``day`` (local), as aware datetimes; overnight ranges end next day."""
        result = []
        for r in self._ranges(day):
            start = datetime.combine(day, _time(r.start), self.tz)
            end_day = day if _time(r.end) > _time(r.start) else day + timedelta(days=1)
            result.append((start, datetime.combine(end_day, _time(r.end), self.tz)))
        return result

    def _around(self, at: datetime) -> list[tuple[datetime, datetime]]:
        local = at.astimezone(self.tz).date()
        return [iv for d in range(-1, SEARCH_DAYS) for iv in self.intervals(local + timedelta(days=d))]

    def is_open(self, at: datetime) -> bool:
        return any(start <= at < end for start, end in self._around(at))

    def next_open(self, at: datetime) -> datetime | None:
        """``at`` itself when open, else the next opening; None if closed for SEARCH_DAYS."""
        for start, end in self._around(at):
            if end > at:
                return max(start, at)
        return None

    def add_business_minutes(self, start: datetime, minutes: int) -> datetime:
        """The moment ``minutes`` of opening time after ``start``; a lead at 22:00 is due that many
        minutes after the next opening."""
        left = timedelta(minutes=minutes)
        for iv_start, iv_end in self._around(start):
            if iv_end <= start:
                continue
            begin = max(iv_start, start)
            if begin + left <= iv_end:
                return begin + left
            left -= iv_end - begin
        return start + timedelta(minutes=minutes)  # no opening in sight: count wall time
