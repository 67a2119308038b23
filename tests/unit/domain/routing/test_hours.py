"""Business hours: overnight ranges, two time zones, Russian holidays (opt-in), a branch's own
days off, transferred working days, next opening, SLA minutes counted in business time."""

from __future__ import annotations

import pytest

from leadflow import clock
from leadflow.domain.calendar import Calendar
from leadflow.steps.escalate import sla_due
from tests.support.builders import KRS, MSK, business, lead, moment

BAR = business(
    """
    timezone: Europe/Moscow
    services: [{id: table, name: Столик}]
    hours:
      thu: ["18:00-24:00"]
      fri: ["20:00-02:00"]
      sat: ["00:00-03:00", "20:00-02:00"]
    """
)

TWO_CITIES = business(
    """
    timezone: Europe/Moscow
    services: [{id: manicure, name: Маникюр}]
    branches:
      - {id: msk, timezone: Europe/Moscow, hours: {mon: ["09:00-21:00"], tue: ["09:00-21:00"]}}
      - {id: krs, timezone: Asia/Krasnoyarsk, hours: {mon: ["09:00-21:00"], tue: ["09:00-21:00"]}}
    """
)

EVERY_DAY = '{mon: ["10:00-20:00"], tue: ["10:00-20:00"], wed: ["10:00-20:00"], thu: ["10:00-20:00"], fri: ["10:00-20:00"], sat: ["10:00-20:00"], sun: ["10:00-20:00"]}'
WEEKDAYS_ONLY = '{mon: ["09:00-18:00"], tue: ["09:00-18:00"], wed: ["09:00-18:00"], thu: ["09:00-18:00"], fri: ["09:00-18:00"]}'

HOLIDAYS = business(
    f"""
    timezone: Asia/Krasnoyarsk
    services: [{{id: manicure, name: Маникюр}}]
    branches:
      - {{id: salon, hours: {EVERY_DAY}}}
      - {{id: clinic, closed_on_public_holidays: true, hours: {EVERY_DAY}}}
      - {{id: own, hours: {EVERY_DAY}, days_off: [2026-03-18, 2026-03-19]}}
      - id: office
        closed_on_public_holidays: true
        hours: {WEEKDAYS_ONLY}
        extra_working_days: [2025-11-01]
    """
)


def cal(cfg, branch=None) -> Calendar:
    return Calendar.for_branch(cfg, branch)


class TestOvernightBar:
    def test_open_after_midnight_until_two(self):
        bar = cal(BAR)
        assert bar.is_open(moment(MSK, "2026-03-13 20:00"))  # Friday opening
        assert bar.is_open(moment(MSK, "2026-03-14 01:59"))  # Friday's night, Saturday's date
        assert not bar.is_open(moment(MSK, "2026-03-14 03:00"))
        assert not bar.is_open(moment(MSK, "2026-03-13 19:59"))

    def test_overlapping_ranges_are_one_stretch(self):
        # Given Friday 20:00-02:00 and Saturday 00:00-03:00 overlap after midnight
        # When a lead arrives at 01:00 with 100 minutes to answer
        due = cal(BAR).add_business_minutes(moment(MSK, "2026-03-14 01:00"), 100)
        # Then the overlap counts once: due at 02:40, not 01:40
        assert due == moment(MSK, "2026-03-14 02:40")

    def test_day_ending_at_24_00_runs_to_midnight(self):
        bar = cal(BAR)
        assert bar.is_open(moment(MSK, "2026-03-12 23:59:59"))
        assert not bar.is_open(moment(MSK, "2026-03-13 00:00"))
        assert bar.add_business_minutes(moment(MSK, "2026-03-12 23:30"), 60) == moment(
            MSK, "2026-03-13 20:30"
        )

    def test_next_open_after_closing_at_two(self):
        assert cal(BAR).next_open(moment(MSK, "2026-03-14 03:00")) == moment(MSK, "2026-03-14 20:00")

    def test_sla_counts_only_open_minutes_across_the_night(self):
        # A lead at 02:50 on Saturday (open until 03:00) with 15 minutes: 10 now, 5 at 20:00.
        due = cal(BAR).add_business_minutes(moment(MSK, "2026-03-14 02:50"), 15)
        assert due == moment(MSK, "2026-03-14 20:05")


class TestTimeZones:
    def test_same_instant_open_in_krasnoyarsk_closed_in_moscow(self):
        at = moment(KRS, "2026-03-16 10:00")  # 06:00 in Moscow
        assert cal(TWO_CITIES, "krs").is_open(at)
        assert not cal(TWO_CITIES, "msk").is_open(at)
        assert cal(TWO_CITIES, "msk").next_open(at) == moment(MSK, "2026-03-16 09:00")

    def test_evening_in_krasnoyarsk_is_afternoon_in_moscow(self):
        at = moment(KRS, "2026-03-16 22:00")  # 18:00 in Moscow
        assert not cal(TWO_CITIES, "krs").is_open(at)
        assert cal(TWO_CITIES, "msk").is_open(at)
        assert cal(TWO_CITIES, "krs").next_open(at) == moment(KRS, "2026-03-17 09:00")

    def test_next_open_is_the_moment_itself_when_open(self):
        at = moment(KRS, "2026-03-16 12:34")
        assert cal(TWO_CITIES, "krs").next_open(at) == at

    def test_a_whole_closed_weekend_is_skipped(self):
        assert cal(TWO_CITIES, "krs").next_open(moment(KRS, "2026-03-17 21:00")) == moment(
            KRS, "2026-03-23 09:00"
        )


class TestHolidays:
    def test_8_march_open_unless_the_branch_opts_in(self):
        womens_day = moment(KRS, "2025-03-08 12:00")  # a Saturday
        assert cal(HOLIDAYS, "salon").is_open(womens_day)
        assert not cal(HOLIDAYS, "clinic").is_open(womens_day)
        assert cal(HOLIDAYS, "clinic").next_open(womens_day) == moment(KRS, "2025-03-09 10:00")

    def test_observed_holiday_closes_an_opted_in_branch(self):
        observed = moment(KRS, "2026-03-09 12:00")  # 8 March 2026 is a Sunday: Monday is off
        assert not cal(HOLIDAYS, "clinic").is_open(observed)
        assert cal(HOLIDAYS, "salon").is_open(observed)

    def test_new_year_holidays_close_an_opted_in_branch_for_a_week(self):
        assert cal(HOLIDAYS, "clinic").next_open(moment(KRS, "2025-12-31 21:00")) == moment(
            KRS, "2026-01-10 10:00"
        )

    def test_branch_days_off(self):
        own = cal(HOLIDAYS, "own")
        assert not own.is_open(moment(KRS, "2026-03-18 12:00"))
        assert own.next_open(moment(KRS, "2026-03-17 20:30")) == moment(KRS, "2026-03-20 10:00")

    def test_transferred_working_saturday(self):
        office = cal(HOLIDAYS, "office")
        # Saturday 1 November 2025 was a working day in Russia (its day off moved to Monday 3rd).
        assert office.is_open(moment(KRS, "2025-11-01 12:00"))
        assert not office.is_open(moment(KRS, "2025-11-08 12:00"))  # an ordinary Saturday
        assert office.next_open(moment(KRS, "2025-10-31 19:00")) == moment(KRS, "2025-11-01 09:00")
        # Monday 3rd (the moved day off) and Tuesday 4th (Unity Day) are closed.
        assert office.next_open(moment(KRS, "2025-11-01 18:00")) == moment(KRS, "2025-11-05 09:00")


class TestSlaInBusinessTime:
    CFG = business(
        """
        timezone: Asia/Krasnoyarsk
        services: [{id: manicure, name: Маникюр}]
        hours: {mon: ["09:00-21:00"], tue: ["09:00-21:00"]}
        sla: {hot_min: 15, warm_min: 60}
        """
    )

    @pytest.mark.parametrize(
        ("received", "temperature", "due"),
        [
            ("2026-03-16 22:00", "hot", "2026-03-17 09:15"),  # after closing: from the opening
            ("2026-03-17 06:30", "warm", "2026-03-17 10:00"),  # before opening
            ("2026-03-16 20:50", "hot", "2026-03-17 09:05"),  # 10 min today, 5 tomorrow
            ("2026-03-16 12:00", "hot", "2026-03-16 12:15"),  # open: plain minutes
        ],
    )
    def test_lead_is_due_sla_minutes_of_opening_time_later(self, received, temperature, due):
        clock.freeze(moment(KRS, received))
        assert sla_due(self.CFG, lead(temperature=temperature), clock.now()) == moment(KRS, due)

    def test_ranges_listed_out_of_order_still_open_at_the_earliest(self):
        cfg = business(
            """
            timezone: Asia/Krasnoyarsk
            services: [{id: manicure, name: Маникюр}]
            hours: {mon: ["15:00-20:00", "10:00-13:00"]}
            """
        )
        monday_morning = moment(KRS, "2026-03-16 08:00")
        assert cal(cfg).next_open(monday_morning) == moment(KRS, "2026-03-16 10:00")
        assert cal(cfg).add_business_minutes(monday_morning, 200) == moment(KRS, "2026-03-16 15:20")
