"""Who owns a lead: shifts, capacity, repeat clients, VIPs, off hours, /off, the default owner.

Runs the real StaffStore on moto (the `aws` fixture), so capacity and round-robin go through the
same conditional DynamoDB updates as in AWS."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from leadflow import clock
from leadflow.domain.assignment import Assignment, choose_owner
from leadflow.domain.rules import LeadFacts
from tests.support.builders import KRS, business, lead, moment

EVERY_DAY = (
    "{" + ", ".join(f'{d}: ["09:00-21:00"]' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")) + "}"
)

CFG = business(
    f"""
    timezone: Asia/Krasnoyarsk
    services:
      - {{id: manicure, name: Маникюр, group: nails}}
      - {{id: haircut, name: Стрижка, group: hair}}
    branches: [{{id: center, hours: {EVERY_DAY}}}]
    staff:
      - {{id: anna, name: Анна, skills: [nails], branch: center, capacity: 2}}
      - {{id: katya, name: Катя, skills: [nails], branch: center, capacity: 2, shifts: {{tue: ["09:00-21:00"]}}}}
      - {{id: olga, name: Ольга, skills: [hair], branch: center, shifts: {{mon: ["12:00-21:00"], tue: ["12:00-21:00"]}}}}
      - {{id: marina, name: Марина, role: manager, branch: center, capacity: 50}}
      - {{id: vera, name: Вера, role: manager, branch: center, capacity: 50}}
      - {{id: elena, name: Елена, role: senior, branch: center}}
    """
)

MONDAY_NOON = moment(KRS, "2026-03-16 12:00")
TUESDAY_NOON = moment(KRS, "2026-03-17 12:00")
_lead_ids = itertools.count(1)


@pytest.fixture
def staff(aws):
    return aws.store.staff


def route(staff, at, service="manicure", previous=None, facts=None, cfg=CFG, lead_id=None) -> Assignment:
    # Every route is a new lead: capacity counts distinct lead ids (taking one lead twice counts once).
    clock.freeze(at)
    facts = facts or LeadFacts(repeat_client=previous is not None)
    new = lead(lead_id or f"L{next(_lead_ids)}", service=service)
    return choose_owner(new, facts, cfg, staff, clock.now(), previous)


def open_leads(staff, staff_id: str) -> int:
    return staff.state([staff_id])[staff_id].open_leads


class TestShiftsAndCapacity:
    def test_only_staff_on_shift_get_leads(self, staff):
        # Katya works Tuesdays only: on Monday every manicure goes to Anna.
        owners = [route(staff, MONDAY_NOON).owner for _ in range(2)]
        assert owners == ["anna", "anna"]

    def test_full_specialists_overflow_to_the_default_manager_with_the_reason(self, staff):
        # Given Anna (capacity 2) is the only nails specialist on shift on Monday
        first, second, third = (route(staff, MONDAY_NOON) for _ in range(3))
        # Then the third lead goes to a manager, never to nobody, and says why
        assert [first.owner, second.owner, third.owner] == ["anna", "anna", "marina"]
        assert third.reason == "rule default: nobody eligible → default owner"
        assert open_leads(staff, "anna") == 2

    def test_round_robin_alternates_between_staff_on_shift(self, staff):
        owners = [route(staff, TUESDAY_NOON).owner for _ in range(4)]
        assert sorted(owners) == ["anna", "anna", "katya", "katya"]
        assert owners[0] != owners[1]

    def test_released_lead_frees_capacity(self, staff):
        route(staff, MONDAY_NOON, lead_id="first"), route(staff, MONDAY_NOON, lead_id="second")
        staff.release_lead("anna", "first")
        assert route(staff, MONDAY_NOON).owner == "anna"
        assert open_leads(staff, "anna") == 2

    def test_the_same_lead_taken_twice_counts_once(self, staff):
        # A redelivered route of one lead must not eat a second place of Anna's capacity.
        assert [route(staff, MONDAY_NOON, lead_id="same").owner for _ in range(2)] == ["anna", "anna"]
        assert open_leads(staff, "anna") == 1
        staff.release_lead("anna", "same"), staff.release_lead("anna", "same")
        assert open_leads(staff, "anna") == 0

    def test_round_robin_is_fair_per_service_when_services_interleave(self, staff):
        # Hair and nails leads alternate; one shared counter would give every nails lead to one person.
        cfg = CFG.model_copy(
            update={"staff": [m.model_copy(update={"capacity": 50}) for m in CFG.staff]},
        )
        nails = []
        for _ in range(6):
            route(staff, TUESDAY_NOON, service="haircut", cfg=cfg)
            nails.append(route(staff, TUESDAY_NOON, cfg=cfg).owner)
        assert sorted(nails) == ["anna"] * 3 + ["katya"] * 3


class TestRepeatClient:
    def test_previous_owner_when_on_shift_and_under_capacity(self, staff):
        owners = [route(staff, TUESDAY_NOON, previous="katya").owner for _ in range(2)]
        assert owners == ["katya", "katya"]
        assert route(staff, TUESDAY_NOON, previous="olga", service="manicure").reason == (
            "rule default: repeat client → previous owner"
        )

    def test_previous_owner_at_capacity_gives_the_next(self, staff):
        route(staff, TUESDAY_NOON, previous="katya"), route(staff, TUESDAY_NOON, previous="katya")
        third = route(staff, TUESDAY_NOON, previous="katya")
        assert third.owner == "anna"
        assert third.reason == "rule default: previous owner katya at capacity; round-robin"

    def test_previous_owner_off_shift_gives_the_next(self, staff):
        monday = route(staff, MONDAY_NOON, previous="katya")
        assert (monday.owner, monday.reason) == (
            "anna",
            "rule default: previous owner katya not on shift; round-robin",
        )


class TestVip:
    def test_vip_goes_to_a_manager_with_high_priority(self, staff):
        vip = route(staff, MONDAY_NOON, facts=LeadFacts(vip=True))
        assert (vip.owner, vip.priority) == ("marina", "high")

    def test_vip_repeat_client_of_a_specialist_still_goes_to_a_manager(self, staff):
        vip = route(staff, TUESDAY_NOON, previous="anna", facts=LeadFacts(vip=True, repeat_client=True))
        assert vip.owner in {"marina", "vera"}
        assert "previous owner anna is not a VIP owner" in vip.reason

    def test_vip_whose_previous_owner_is_a_manager_keeps_them(self, staff):
        route(staff, MONDAY_NOON, facts=LeadFacts(vip=True))  # moves the ticket on
        vip = route(staff, MONDAY_NOON, previous="vera", facts=LeadFacts(vip=True, repeat_client=True))
        assert vip.owner == "vera"


class TestOffHours:
    def test_lead_at_night_goes_to_the_morning_shift_with_a_call_back_at_opening(self, staff):
        # Monday 22:30, closed; on Tuesday at 09:00 Anna and Katya are on shift.
        night = route(staff, moment(KRS, "2026-03-16 22:30"))
        assert night.owner in {"anna", "katya"}
        assert night.callback_at == moment(KRS, "2026-03-17 09:00")
        assert night.reason == "rule default: round-robin (next opening shift)"

    def test_lead_before_a_late_shift_waits_for_that_shift(self, staff):
        # Olga (hair) starts at 12:00; the salon opens at 09:00.
        early = route(staff, moment(KRS, "2026-03-16 06:00"), service="haircut")
        assert (early.owner, early.callback_at) == ("olga", moment(KRS, "2026-03-16 12:00"))

    def test_sunday_night_lead_skips_to_the_next_working_specialist(self, staff):
        # Saturday 23:00: Sunday and Monday Katya does not work; Anna works every day.
        assert route(staff, moment(KRS, "2026-03-21 23:00")).owner == "anna"

    def test_open_hours_leave_no_call_back(self, staff):
        assert route(staff, MONDAY_NOON).callback_at is None


class TestStaffOff:
    def test_off_is_respected_at_once_and_on_brings_back(self, staff):
        # Given Anna says /off until tomorrow
        staff.set_off_until("anna", moment(KRS, "2026-03-18 00:00"))
        # Then the next Tuesday leads go to Katya only
        assert [route(staff, TUESDAY_NOON).owner for _ in range(2)] == ["katya", "katya"]
        # And after /on Anna takes leads again
        staff.set_off_until("anna", None)
        assert route(staff, TUESDAY_NOON).owner == "anna"

    def test_off_until_passes_with_the_clock(self, staff):
        staff.set_off_until("anna", moment(KRS, "2026-03-16 15:00"))
        assert route(staff, MONDAY_NOON).owner == "marina"  # nobody else does nails on Monday
        assert route(staff, MONDAY_NOON + timedelta(hours=4)).owner == "anna"

    def test_manager_off_hands_the_default_to_a_manager_on_shift(self, staff):
        staff.set_off_until("marina", moment(KRS, "2026-03-17 00:00"))
        route(staff, MONDAY_NOON), route(staff, MONDAY_NOON)  # Anna full
        assert route(staff, MONDAY_NOON).owner == "vera"

    def test_off_staff_is_not_given_a_night_lead_for_the_morning(self, staff):
        staff.set_off_until("anna", moment(KRS, "2026-03-17 12:00"))
        night = route(staff, moment(KRS, "2026-03-16 22:30"))
        assert night.owner == "katya"


class TestDefaultOwner:
    def test_config_without_specialists_gives_the_manager(self, staff):
        cfg = CFG.model_copy(update={"staff": [m for m in CFG.staff if m.role != "specialist"]})
        assert route(staff, MONDAY_NOON, cfg=cfg).owner == "marina"

    def test_config_without_staff_gives_the_business_owner(self, staff):
        cfg = CFG.model_copy(update={"staff": []})
        result = route(staff, MONDAY_NOON, cfg=cfg)
        assert (result.owner, result.reason) == ("owner", "rule default: nobody eligible → default owner")


def test_a_reassignment_without_a_service_keeps_the_former_owners_skills(staff):
    # Issue 15: the demo's missed call (no service) went from a manicurist to the dentist.
    cfg = business(
        """\
        timezone: Asia/Krasnoyarsk
        services:
          - {id: manicure, name: Маникюр, group: nails}
          - {id: dental_checkup, name: Осмотр, group: dental}
        staff:
          - {id: anna, name: Анна, skills: [nails]}
          - {id: igor, name: Игорь, skills: [dental]}
          - {id: katya, name: Катя, skills: [nails]}
        """
    )
    clock.freeze(MONDAY_NOON)
    missed_call = lead("L-call", service=None)
    owners = {
        choose_owner(
            missed_call,
            LeadFacts(repeat_client=False),
            cfg,
            staff,
            clock.now(),
            None,
            frozenset({"anna"}),
            like="anna",
        ).owner
        for _ in range(4)
    }
    assert owners == {"katya"}
