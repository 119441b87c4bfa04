"""The behaviour model, rule by rule: which events a remote raises on a vehicle in a given state.

Pure `scenario.plan` calls on unsaved vehicles: no database, no HTTP.
"""

import datetime as dt

import pytest

from simulator import scenario
from simulator.models import DEEP_SLEEP_AFTER
from simulator.tests.plans import NOW, vehicle


def run(member: str, body: dict, *, busy: bool = False, **state) -> scenario.Plan:
    return scenario.plan(member=member, body=body, vehicle=vehicle(**state), now=NOW, busy=busy)


def events(plan: scenario.Plan) -> list[str]:
    """Statuses in order, a failure written Failed:<cause>."""
    return [f"{s.status}:{s.failure_cause}" if s.failure_cause else s.status for s in plan.steps]


def done(plan: scenario.Plan) -> scenario.Step:
    assert plan.steps[-1].event_type == "Done"
    return plan.steps[-1]


HORN = {"state": "Activated"}
NAVIGATION = {"positions": [{"type": "Point", "coordinates": [2.35, 48.85]}]}


# --- the vendor's checks, in order ---------------------------------------------------------


def test_without_subscription_every_remote_fails_with_missing_rights():
    plan = run("horn", HORN, remote_subscribed=False)

    assert events(plan) == ["Accepted", "Failed:MissingRights"]
    assert plan.reached_after is None and not plan.wakes


def test_a_navigation_without_subscription_fails_without_accepted():
    assert events(run("navigation", NAVIGATION, remote_subscribed=False)) == ["Failed:MissingRights"]


def test_missing_rights_comes_before_the_stolen_state_and_the_action_in_progress():
    plan = run("horn", HORN, remote_subscribed=False, stolen=True, busy=True)

    assert done(plan).failure_cause == "MissingRights"


@pytest.mark.parametrize(
    ("member", "body"),
    [("horn", HORN), ("door", {"state": "Unlocked"}), ("navigation", NAVIGATION), ("wakeUp", {"action": "WakeUp"})],
)
def test_a_stolen_vehicle_refuses_everyday_commands(member, body):
    assert done(run(member, body, stolen=True)).failure_cause == "NotPossibleDueToVehicleStolenState"


@pytest.mark.parametrize(
    ("member", "body", "effects"),
    [
        ("immobilization", {"activate": True}, {"immobilized": True}),
        ("stolen", {"immobilization": {"activate": True}}, {"immobilized": True}),
        ("stolen", {"stolen": False}, {"stolen": False, "stolen_since": None}),
    ],
)
def test_a_stolen_vehicle_still_takes_stolen_and_immobilization_commands(member, body, effects):
    step = done(run(member, body, stolen=True))

    assert (step.status, step.effects) == ("Success", effects)


def test_a_second_action_of_the_same_type_fails_while_the_first_runs():
    plan = run("door", {"state": "Unlocked"}, busy=True)

    assert events(plan) == ["Accepted", "Failed:SameActionInProgress"]


# --- waking up -------------------------------------------------------------------------------


def test_waking_a_sleeping_vehicle_spends_a_wake_up():
    plan = run("horn", HORN, asleep=True)

    assert events(plan) == ["Accepted", "WakingUpVehicle", "SentToVehicle", "Success"]
    assert plan.wakes


def test_an_awake_or_driven_vehicle_needs_no_wake_up():
    awake = run("horn", HORN, asleep=True, awake_until=NOW + dt.timedelta(minutes=1))
    driven = run("horn", HORN, asleep=True, in_use=True)

    for plan in (awake, driven):
        assert events(plan) == ["Accepted", "SentToVehicle", "Success"]
        assert not plan.wakes


def test_with_the_monthly_budget_spent_a_sleeping_vehicle_is_not_woken():
    plan = run("horn", HORN, asleep=True, wake_ups_used=20, wake_up_month="2026-03")

    assert events(plan) == ["Accepted", "TooManyWakeUpsOverMonth", "Failed:TooManyWakeUpsOverMonth"]
    assert [s.event_type for s in plan.steps] == ["Pending", "Pending", "Done"]
    assert not plan.wakes and plan.reached_after is None


def test_the_wake_up_count_starts_again_each_month():
    plan = run("horn", HORN, asleep=True, wake_ups_used=20, wake_up_month="2026-02")

    assert done(plan).status == "Success"
    assert plan.wakes


def test_a_spent_budget_does_not_matter_to_an_awake_vehicle():
    assert done(run("horn", HORN, wake_ups_used=20, wake_up_month="2026-03")).status == "Success"


def test_a_vehicle_in_deep_sleep_times_out_after_two_minutes():
    parked = NOW - DEEP_SLEEP_AFTER - dt.timedelta(days=1)

    plan = run("horn", HORN, asleep=True, last_driven_at=parked)

    assert events(plan) == ["Accepted", "WakingUpVehicle", "Failed:VehicleConnectionTimeout"]
    assert plan.steps[-1].after == scenario.DEEP_SLEEP_TIMEOUT_AFTER == 120.0
    assert plan.wakes and plan.reached_after is None


def test_a_vehicle_parked_for_less_than_two_weeks_still_wakes():
    parked = NOW - DEEP_SLEEP_AFTER + dt.timedelta(hours=1)

    assert done(run("horn", HORN, asleep=True, last_driven_at=parked)).status == "Success"


def test_a_navigation_to_a_vehicle_in_deep_sleep_times_out_without_waking_it():
    parked = NOW - DEEP_SLEEP_AFTER - dt.timedelta(days=1)

    plan = run("navigation", NAVIGATION, asleep=True, last_driven_at=parked)

    assert events(plan) == ["SentToVehicle", "Failed:VehicleConnectionTimeout"]
    assert not plan.wakes


def test_an_offline_sleeping_vehicle_spends_its_wake_up_and_times_out():
    plan = run("horn", HORN, asleep=True, online=False)

    assert events(plan) == ["Accepted", "WakingUpVehicle", "Failed:VehicleConnectionTimeout"]
    assert plan.wakes


# --- the vehicle's own answer, per member ---------------------------------------------------


@pytest.mark.parametrize(
    ("state", "body", "expected"),
    [
        ({"door_open": True, "doors_locked": False}, {"state": "Locked"}, ("Failed", "DoorsOpen", {})),
        ({"door_open": True, "doors_locked": True}, {"state": "Locked"}, ("Failed", "DoorsOpen", {})),
        ({"door_open": True, "doors_locked": True}, {"state": "Unlocked"}, ("Success", "", {"doors_locked": False})),
        ({"doors_locked": True}, {"state": "Locked"}, ("AlreadyDone", "", {})),
        ({"doors_locked": False}, {"state": "Locked"}, ("Success", "", {"doors_locked": True})),
    ],
)
def test_doors(state, body, expected):
    step = done(run("door", body, **state))

    assert (step.status, step.failure_cause, step.effects) == expected


@pytest.mark.parametrize("on", [True, False])
def test_lights_follow_the_command(on):
    step = done(run("lights", {"on": on}))

    assert (step.status, step.effects) == ("Success", {"lights_on": on})


@pytest.mark.parametrize(
    ("state", "body", "expected"),
    [
        ({"motorization": "Thermic"}, {"immediate": True}, ("Failed", "WrongCommand", {})),
        ({"plugged": False}, {"immediate": True}, ("Failed", "ExternalChargingSystemError", {})),
        ({"charging": True}, {"immediate": True}, ("AlreadyDone", "", {})),
        ({"in_use": True}, {"immediate": True}, ("Failed", "VehicleInUse", {})),
        ({}, {"immediate": True}, ("Success", "", {"charging": True})),
        ({"motorization": "Hybrid"}, {"immediate": True}, ("Success", "", {"charging": True})),
        ({}, {"immediate": False}, ("AlreadyDone", "", {})),
        ({"charging": True}, {"immediate": False}, ("Success", "", {"charging": False})),
        (
            {"plugged": False},
            {"schedule": {"nextDelayedTime": "2026-03-11T06:30:00Z"}},
            ("Success", "", {"next_delayed_charge": "2026-03-11T06:30:00Z"}),
        ),
    ],
)
def test_charging(state, body, expected):
    step = done(run("charging", body, **state))

    assert (step.status, step.failure_cause, step.effects) == expected


def test_charge_programs_are_stored_by_slot_and_preferences_merged():
    current = [{"slot": 1, "enabled": True, "start": "PT22H"}, {"slot": 2, "enabled": True, "start": "PT1H"}]
    programs = [{"slot": 2, "enabled": False, "start": "PT2H"}, {"slot": 3, "enabled": True, "start": "PT3H"}]

    schedule = done(run("charging", {"schedule": {"programs": programs}}, charge_programs=current))
    preferences = done(run("charging", {"preferences": {"type": "Full"}}, charge_preferences={"level": "Level2"}))

    assert schedule.effects == {"charge_programs": [current[0], *programs]}
    assert preferences.effects == {"charge_preferences": {"level": "Level2", "type": "Full"}}


def test_preconditioning_needs_an_electrified_vehicle():
    step = done(run("preconditioning", {"airConditioning": {"immediate": True}}, motorization="Thermic"))

    assert (step.status, step.failure_cause) == ("Failed", "WrongCommand")


def test_preconditioning_on_a_low_battery_is_refused_by_the_vehicle():
    plan = run("preconditioning", {"airConditioning": {"immediate": True}}, energy_level=14.9)

    assert events(plan) == [
        "Accepted",
        "SentToVehicle",
        "VehicleBatteryChargeTooLow",
        "Failed:NotPossibleDueToVehicleBatteryLevel",
    ]
    assert plan.steps[2].event_type == "Pending"


def test_stopping_preconditioning_works_even_on_a_low_battery():
    step = done(run("preconditioning", {"airConditioning": {"immediate": False}}, energy_level=5.0))

    assert (step.status, step.effects) == ("Success", {"preconditioning_on": False})


def test_preconditioning_already_on_is_already_done():
    step = done(run("preconditioning", {"airConditioning": {"immediate": True}}, preconditioning_on=True))

    assert step.status == "AlreadyDone"


def test_preconditioning_programs_are_set_and_deleted_by_slot():
    existing = {"slot": 1, "enabled": True, "recurrence": "Daily", "start": "PT7H", "occurence": {"day": ["Mon"]}}
    new = {
        "slot": 2,
        "enabled": True,
        "actionsType": "Set",
        "recurrence": "Daily",
        "start": "PT8H",
        "occurence": {"day": ["Tue"]},
    }
    body = {
        "airConditioning": {"immediate": True, "programs": [new, {"slot": 1, "actionsType": "Delete", "start": "PT0M"}]}
    }

    step = done(run("preconditioning", body, preconditioning_programs=[existing]))

    assert step.status == "Success"
    kept = {k: v for k, v in new.items() if k != "actionsType"}
    assert step.effects == {"preconditioning_on": True, "preconditioning_programs": [kept]}


def test_a_wake_up_succeeds():
    assert done(run("wakeUp", {"action": "WakeUp"})).status == "Success"


@pytest.mark.parametrize(
    ("state", "activate", "expected"),
    [
        ({"in_use": True}, True, ("Failed", "VehicleInUse", {})),
        ({"in_use": True, "immobilized": True}, False, ("Success", "", {"immobilized": False})),
        ({"immobilized": True}, True, ("AlreadyDone", "", {})),
        ({}, True, ("Success", "", {"immobilized": True})),
    ],
)
def test_immobilization(state, activate, expected):
    for member, body in (
        ("immobilization", {"activate": activate}),
        ("stolen", {"immobilization": {"activate": activate}}),
    ):
        step = done(run(member, body, **state))

        assert (step.status, step.failure_cause, step.effects) == expected


def test_reporting_a_vehicle_stolen_dates_the_theft_when_raised():
    step = done(run("stolen", {"stolen": True}))

    assert (step.status, step.effects) == ("Success", {"stolen": True, "stolen_since": scenario.NOW})
    assert done(run("stolen", {"stolen": True}, stolen=True)).status == "AlreadyDone"


def test_a_tracking_period_is_stored():
    step = done(run("stolen", {"trackingPeriod": {"running": 30}}))

    assert (step.status, step.effects) == ("Success", {"tracking_running": 30})


def test_a_navigation_is_stored_without_accepted_nor_wake_up():
    plan = run("navigation", NAVIGATION, asleep=True)

    assert events(plan) == ["SentToVehicle", "Success"]
    assert done(plan).effects == {"navigation_positions": NAVIGATION["positions"]}
    assert not plan.wakes
