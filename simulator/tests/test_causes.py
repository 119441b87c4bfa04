"""Every failure cause the vendor documents, how the simulator reaches it, and how a demo forces one.

The realistic triggers are pure `scenario.plan` calls; forcing goes through `next_failure`, the
`simulator_vehicle` command and the admin; the request limits and what the simulator refuses to
hold go over real HTTP.
"""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from simulator import scenario, vendor
from simulator.models import SimRemoteAction, SimVehicle
from simulator.tests.plans import NOW, vehicle
from stellantis import spec
from stellantis.vocabulary import FailureCause, RemoteType

HORN = {"state": "Activated"}
NAVIGATION = {"positions": [{"type": "Point", "coordinates": [2.35, 48.85]}]}


def run(member: str, body: dict, *, busy=False, in_short_time=0, today=0, **state) -> scenario.Plan:
    return scenario.plan(
        member=member,
        body=body,
        vehicle=vehicle(**state),
        now=NOW,
        busy=busy,
        requests_in_short_time=in_short_time,
        requests_today=today,
    )


def events(plan: scenario.Plan) -> list[str]:
    """Statuses in order, a failure written Failed:<cause>, a feedback written Success+<detail>."""
    out = []
    for s in plan.steps:
        if s.failure_cause:
            out.append(f"{s.status}:{s.failure_cause}")
        elif s.feedback_detail:
            out.append(f"{s.status}+{s.feedback_detail}")
        else:
            out.append(s.status)
    return out


# --- the request limits --------------------------------------------------------------------


def test_too_many_remotes_within_a_minute_is_too_many_request_in_short_time():
    limit = scenario.SHORT_TIME_LIMIT

    assert events(run("horn", HORN, in_short_time=limit - 1))[-1] == "Success"
    assert events(run("horn", HORN, in_short_time=limit)) == ["Accepted", "Failed:TooManyRequestInShortTime"]


def test_too_many_remotes_within_a_day_is_too_many_request_sent():
    limit = scenario.DAY_LIMIT

    assert events(run("horn", HORN, today=limit - 1))[-1] == "Success"
    assert events(run("horn", HORN, today=limit, in_short_time=scenario.SHORT_TIME_LIMIT)) == [
        "Accepted",
        "Failed:TooManyRequestSent",
    ]


def test_request_limits_come_after_the_rights_and_before_the_stolen_state_and_the_action_in_progress():
    assert events(run("horn", HORN, today=500, remote_subscribed=False))[-1] == "Failed:MissingRights"
    assert events(run("horn", HORN, in_short_time=50, stolen=True, busy=True))[-1] == (
        "Failed:TooManyRequestInShortTime"
    )
    assert events(run("navigation", NAVIGATION, in_short_time=50)) == ["Failed:TooManyRequestInShortTime"]


# --- the vendor's check before an unlock or an immobilization --------------------------------


def test_an_unlock_is_checked_before_it_is_sent():
    assert events(run("door", {"state": "Unlocked"}, doors_locked=True)) == [
        "Accepted",
        "CheckingVehicle",
        "SentToVehicle",
        "Success",
    ]
    asleep = run("door", {"state": "Unlocked"}, doors_locked=True, asleep=True)
    assert events(asleep) == ["Accepted", "WakingUpVehicle", "CheckingVehicle", "SentToVehicle", "Success"]
    assert asleep.wakes and asleep.reached_after == pytest.approx(
        scenario.ACCEPTED_AFTER + scenario.WAKING_UP_AFTER + scenario.WAKE_UP_TAKES
    )


def test_a_lock_is_not_checked():
    assert "CheckingVehicle" not in events(run("door", {"state": "Locked"}, doors_locked=False))


@pytest.mark.parametrize(
    ("member", "body"),
    [("immobilization", {"activate": True}), ("stolen", {"immobilization": {"activate": True}})],
)
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"in_use": True, "doors_locked": False}, ["Accepted", "CheckingVehicle", "Failed:VehicleInUse"]),
        ({"doors_locked": False}, ["Accepted", "CheckingVehicle", "Failed:VehicleIsNotLocked"]),
        ({"doors_locked": True}, ["Accepted", "CheckingVehicle", "SentToVehicle", "Success"]),
    ],
)
def test_an_immobilization_needs_the_vehicle_parked_and_locked(member, body, state, expected):
    plan = run(member, body, **state)

    assert events(plan) == expected
    assert plan.reached_after is not None  # the check reached the vehicle: it stays awake


def test_lifting_an_immobilization_needs_neither():
    plan = run("immobilization", {"activate": False}, immobilized=True, in_use=True, doors_locked=False)

    assert events(plan) == ["Accepted", "CheckingVehicle", "SentToVehicle", "Success"]


# --- the vehicle's own answers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "body", "expected"),
    [
        # Being driven, the key is inside: a plain lock is refused…
        ({"in_use": True, "doors_locked": False}, {"state": "Locked"}, "Failed:CidInside"),
        ({"in_use": True, "doors_locked": True}, {"state": "Locked"}, "AlreadyDone"),
        # …a forced one locks and blacklists the key, even on doors already locked.
        ({"in_use": True, "doors_locked": False}, {"state": "Locked", "forced": True}, "Success+CIDBlacklisted"),
        ({"in_use": True, "doors_locked": True}, {"state": "Locked", "forced": True}, "Success+CIDBlacklisted"),
        # No key inside: nothing to blacklist.
        ({"doors_locked": False}, {"state": "Locked", "forced": True}, "Success+NoCIDBlacklisted"),
        ({"doors_locked": True}, {"state": "Locked", "forced": True}, "AlreadyDone"),
        ({"doors_locked": False}, {"state": "Locked"}, "Success"),
        # An open door refuses any lock first.
        ({"in_use": True, "door_open": True, "doors_locked": False}, {"state": "Locked", "forced": True}, "Failed:DoorsOpen"),
    ],
)
def test_a_key_inside_and_a_forced_lock(state, body, expected):
    plan = run("door", body, **state)

    assert events(plan)[-1] == expected
    if expected.startswith("Success"):
        assert plan.steps[-1].effects == {"doors_locked": True}


@pytest.mark.parametrize(
    "body",
    [{"immediate": True}, {"immediate": False}, {"schedule": {"nextDelayedTime": "2026-03-11T06:30:00Z"}}],
)
def test_a_vehicle_charging_without_a_cable_has_a_faulty_charger(body):
    assert events(run("charging", body, plugged=False, charging=True)) == [
        "Accepted",
        "SentToVehicle",
        "Failed:VehicleChargingSystemError",
    ]
    assert events(run("charging", body, plugged=False, charging=True, motorization="Thermic"))[-1] == (
        "Failed:WrongCommand"
    )


# --- a forced failure ---------------------------------------------------------------------------


def _expected_forced(cause: str, member: str) -> list[str]:
    at = scenario.FORCED_AT[cause]
    failed = f"Failed:{cause}"
    checked = member in ("unlock", "immobilization")
    if at == "vendor":
        return ["Accepted", failed]
    if cause == FailureCause.TOO_MANY_WAKE_UPS_OVER_MONTH:
        return ["Accepted", "TooManyWakeUpsOverMonth", failed]
    if cause == FailureCause.VEHICLE_CONNECTION_TIMEOUT:
        return ["Accepted", "WakingUpVehicle", failed]
    if at == "check" and checked:
        return ["Accepted", "CheckingVehicle", failed]
    before = ["Accepted", "CheckingVehicle", "SentToVehicle"] if checked else ["Accepted", "SentToVehicle"]
    if cause == FailureCause.NOT_POSSIBLE_BATTERY_LEVEL:
        return [*before, "VehicleBatteryChargeTooLow", failed]
    return [*before, failed]


COMMANDS = {
    "horn": ("horn", HORN),
    "unlock": ("door", {"state": "Unlocked"}),
    "immobilization": ("immobilization", {"activate": True}),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("cause", FailureCause.values)
def test_a_forced_cause_ends_the_command_after_the_steps_a_vehicle_shows_first(cause, command):
    member, body = COMMANDS[command]

    plan = run(member, body, next_failure=cause, doors_locked=True)

    assert events(plan) == _expected_forced(cause, command)
    assert plan.steps[-1].event_type == "Done" and plan.steps[-1].effects == {}


def test_a_forced_cause_wins_over_the_vehicle_state_but_keeps_its_wake_up():
    asleep = run("horn", HORN, next_failure="VehicleError", asleep=True, online=False, remote_subscribed=False)
    navigation = run("navigation", NAVIGATION, next_failure="NotPossibleDueToVehiclePrivacyLevel")
    refused = run("navigation", NAVIGATION, next_failure="GeneralError")

    assert events(asleep) == ["Accepted", "WakingUpVehicle", "SentToVehicle", "Failed:VehicleError"]
    assert asleep.wakes
    assert events(navigation) == ["SentToVehicle", "Failed:NotPossibleDueToVehiclePrivacyLevel"]
    assert events(refused) == ["Failed:GeneralError"]


# --- next_failure is spent by one command ------------------------------------------------------

@pytest.fixture
def callback(fleet, receiver):
    return vendor.create_callback(
        fleet_id=fleet.id,
        subscribe={"callback": {"webhook": {"target": receiver.url, "name": "h"}}, "remoteTypes": RemoteType.values},
    )


def send(vehicle, callback, body) -> SimRemoteAction:
    return vendor.send_remote(fleet_id=vehicle.fleet_id, vehicle_id=vehicle.id, callback_id=callback.id, body=body)


def done_of(action) -> tuple[str, str]:
    event = action.events.get(event_type="Done")
    return event.status, event.failure_cause


@pytest.mark.django_db
def test_the_next_failure_is_spent_by_the_next_command_only(fleet, awake_vehicle, callback):
    SimVehicle.objects.filter(pk=awake_vehicle.pk).update(next_failure="CanceledByDriver")

    with pytest.raises(vendor.SimInvalid):
        send(awake_vehicle, callback, {"horn": {"state": "Loud"}})  # refused at the door: not a command
    first = send(awake_vehicle, callback, {"lights": {"on": True}})
    second = send(awake_vehicle, callback, {"horn": {"state": "Activated"}})

    assert done_of(first) == ("Failed", "CanceledByDriver")
    assert done_of(second) == ("Success", "")
    assert SimVehicle.objects.get(pk=awake_vehicle.pk).next_failure == ""


@pytest.mark.django_db
def test_refused_remotes_count_towards_the_limits_but_are_never_in_progress(fleet, awake_vehicle, callback):
    other = fleet.vehicles.exclude(pk=awake_vehicle.pk).order_by("vin").first()
    SimVehicle.objects.filter(pk=other.pk).update(asleep=False, online=True, remote_subscribed=True, stolen=False)
    first = send(awake_vehicle, callback, {"horn": {"state": "Activated"}})
    busy = [send(awake_vehicle, callback, {"horn": {"state": "Activated"}}) for _ in range(scenario.SHORT_TIME_LIMIT - 1)]
    limited = send(awake_vehicle, callback, {"lights": {"on": True}})
    elsewhere = send(other, callback, {"lights": {"on": True}})

    assert done_of(first) == ("Success", "")
    assert {done_of(a) for a in busy} == {("Failed", "SameActionInProgress")}
    assert done_of(limited) == ("Failed", "TooManyRequestInShortTime")
    # Another lights command is not held up by the refused one: it was never in progress.
    assert not vendor._action_in_progress(vehicle=awake_vehicle, remote_type="Lights")
    assert done_of(elsewhere) == ("Success", "")  # the limits are per vehicle


@pytest.mark.django_db
def test_remotes_older_than_the_windows_do_not_count(fleet, awake_vehicle, callback):
    from django.utils import timezone

    old = timezone.now() - dt.timedelta(seconds=scenario.SHORT_TIME_WINDOW + 5)
    yesterday = timezone.now() - dt.timedelta(seconds=scenario.DAY_WINDOW + 5)
    for at, count in ((old, scenario.SHORT_TIME_LIMIT), (yesterday, scenario.DAY_LIMIT)):
        SimRemoteAction.objects.bulk_create(
            SimRemoteAction(
                fleet=fleet, vehicle=awake_vehicle, callback=callback, remote={}, remote_type="Horn", created_at=at
            )
            for _ in range(count)
        )

    assert done_of(send(awake_vehicle, callback, {"horn": {"state": "Activated"}})) == ("Success", "")


# --- what the simulator can hold: refused with the vendor's 400, never booked -------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("simulator.tests.urls")
@pytest.mark.parametrize(
    ("remote", "field"),
    [
        ({"stolen": {"trackingPeriod": {"running": 10**30}}}, "stolen.trackingPeriod.running"),
        ({"stolen": {"trackingPeriod": {"running": 30, "shutdown": 2**31}}}, "stolen.trackingPeriod.shutdown"),
        ({"charging": {"schedule": {"nextDelayedTime": "0001-01-01T00:00:00+01:00"}}}, "charging.schedule.nextDelayedTime"),
        ({"charging": {"schedule": {"nextDelayedTime": "9999-12-31T23:30:00-01:00"}}}, "charging.schedule.nextDelayedTime"),
        ({"label": "a\x00b", "horn": {"state": "Activated"}}, "label"),
    ],
)
def test_a_value_the_simulator_cannot_hold_is_a_400_naming_the_field(api, fleet, awake_vehicle, receiver, remote, field):
    callback_id = api.create_callback(fleet.id, receiver.url, remoteTypes=RemoteType.values)

    response = api.send(awake_vehicle, callback_id, remote)

    assert response.status_code == 400, response.text
    if spec.available():
        assert spec.schema_errors(spec.API_FILE, "xError", response.json()) == []
    assert field in response.json()["message"]
    assert not SimRemoteAction.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("simulator.tests.urls")
def test_the_largest_tracking_period_is_taken_and_stored(api, fleet, awake_vehicle, receiver, pump_all):
    callback_id = api.create_callback(fleet.id, receiver.url, remoteTypes=RemoteType.values)
    largest = 2**31 - 1

    response = api.send(awake_vehicle, callback_id, {"stolen": {"trackingPeriod": {"running": largest, "shutdown": largest}}})
    pump_all()

    assert response.status_code == 202, response.text
    vehicle = SimVehicle.objects.get(pk=awake_vehicle.pk)
    assert (vehicle.tracking_running, vehicle.tracking_shutdown) == (largest, largest)
    assert receiver.statuses()[-1] == "Success"


# --- forcing it: the command and the admin ----------------------------------------------------


def manage(*args) -> str:
    out = io.StringIO()
    call_command("simulator_vehicle", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_command_sets_shows_and_clears_the_next_failure(fleet, awake_vehicle):
    vin = awake_vehicle.vin

    assert "no forced failure" in manage(vin)
    said = manage(vin.lower(), "--next-failure", "cidinside")
    assert SimVehicle.objects.get(pk=awake_vehicle.pk).next_failure == "CidInside"
    assert "CidInside (Key inside the vehicle)" in said and vin in said
    assert "ends Failed with CidInside" in manage(vin)
    assert "was CidInside" in manage(vin, "--clear")
    assert SimVehicle.objects.get(pk=awake_vehicle.pk).next_failure == ""


@pytest.mark.django_db
def test_the_command_names_the_valid_causes_when_given_another(fleet, awake_vehicle):
    with pytest.raises(CommandError) as refused:
        manage(awake_vehicle.vin, "--next-failure", "FlatTyre")

    assert "FlatTyre" in str(refused.value)
    assert all(cause in str(refused.value) for cause in FailureCause.values)
    assert SimVehicle.objects.get(pk=awake_vehicle.pk).next_failure == ""
    with pytest.raises(CommandError, match="No simulated vehicle"):
        manage("VF3NOSUCHVIN00000", "--next-failure", "CidInside")


@pytest.mark.django_db
@pytest.mark.urls("simulator.tests.urls")
def test_the_admin_sets_the_next_failure_on_the_change_page_and_clears_it_from_the_list(
    admin_client, fleet, awake_vehicle
):
    url = reverse("admin:simulator_simvehicle_change", args=[awake_vehicle.pk])
    page = admin_client.get(url)
    form = page.context["adminform"].form
    assert "next_failure" in form.fields
    assert set(FailureCause.values) <= {value for value, _ in form.fields["next_failure"].choices}
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is True:
            data[name] = "on"
        elif value is not False and value is not None:
            data[name] = value
    data["next_failure"] = "NotPossibleDueToVehiclePrivacyLevel"

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert SimVehicle.objects.get(pk=awake_vehicle.pk).next_failure == "NotPossibleDueToVehiclePrivacyLevel"

    admin_client.post(
        reverse("admin:simulator_simvehicle_changelist"),
        {"action": "clear_next_failure", "_selected_action": [awake_vehicle.pk]},
    )

    assert SimVehicle.objects.get(pk=awake_vehicle.pk).next_failure == ""
