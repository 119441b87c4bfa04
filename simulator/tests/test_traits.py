"""Vehicle traits end to end: booked at POST, applied when the Done event is raised, visible in /status."""

import base64
import datetime as dt

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from simulator import demo, vendor
from simulator.dispatch import rfc3339
from simulator.models import SimRemoteAction, SimVehicle, current_month
from simulator.pump import pump as run_pump
from stellantis import spec
from stellantis.vocabulary import RemoteType

pytestmark = [pytest.mark.django_db, pytest.mark.urls("simulator.tests.urls")]


def assert_schema(schema: str, body):
    # The behaviour these tests check holds without the vendor's files; only this
    # comparison needs them, so it alone is left out where they are absent.
    if not spec.available():
        return
    errors = spec.schema_errors(spec.API_FILE, schema, body)
    assert errors == [], f"{schema}: {errors}"


@pytest.fixture
def callback(fleet, receiver):
    return vendor.create_callback(
        fleet_id=fleet.id,
        subscribe={"callback": {"webhook": {"target": receiver.url, "name": "h"}}, "remoteTypes": RemoteType.values},
    )


@pytest.fixture
def send(callback):
    def send(vehicle, body) -> SimRemoteAction:
        return vendor.send_remote(
            fleet_id=vehicle.fleet_id, vehicle_id=vehicle.id, callback_id=callback.id, body=body
        )

    return send


def pump() -> None:
    assert not run_pump(max_seconds=10, follow_up=False).skipped


def outcome(action) -> tuple[str, str]:
    action.refresh_from_db()
    return action.status, action.failure_cause


@pytest.fixture
def get(client):
    def get(path, **params):
        credentials = base64.b64encode(settings.SIMULATOR_CREDENTIALS.encode()).decode()
        return client.get(f"/{settings.SIMULATOR_PATH}/{path}", {"client_id": "test", **params}, HTTP_AUTHORIZATION=f"Basic {credentials}")

    return get


def status_of(get, vehicle) -> dict:
    response = get(f"fleets/{vehicle.fleet_id}/vehicles/{vehicle.id}/status")
    assert response.status_code == 200
    body = response.json()
    assert_schema("Status", body)
    return body


def update(vehicle, **state) -> SimVehicle:
    SimVehicle.objects.filter(pk=vehicle.pk).update(**state)
    vehicle.refresh_from_db()
    return vehicle


# --- wake-ups ---------------------------------------------------------------------------------


def test_waking_a_vehicle_counts_against_this_months_budget(fleet, asleep_vehicle, send):
    update(asleep_vehicle, wake_ups_used=20, wake_up_month="2000-01")  # last spent long ago

    send(asleep_vehicle, {"horn": {"state": "Activated"}})
    update(asleep_vehicle, awake_until=None)
    send(asleep_vehicle, {"lights": {"on": True}})

    asleep_vehicle.refresh_from_db()
    assert (asleep_vehicle.wake_ups_used, asleep_vehicle.wake_up_month) == (2, current_month())
    assert asleep_vehicle.wake_ups_left() == 18


def test_a_spent_budget_ends_in_too_many_wake_ups_and_the_admin_can_reset_it(
    admin_client, fleet, asleep_vehicle, send, receiver
):
    update(asleep_vehicle, wake_up_budget=1)
    first = send(asleep_vehicle, {"horn": {"state": "Activated"}})
    update(asleep_vehicle, awake_until=None)  # dozed off again
    second = send(asleep_vehicle, {"lights": {"on": True}})
    pump()

    assert outcome(first) == ("Success", "")
    assert outcome(second) == ("Failed", "TooManyWakeUpsOverMonth")
    second_events = [e["eventStatus"]["status"] for e in receiver.events() if e["remoteType"] == "Lights"]
    assert second_events == ["Accepted", "TooManyWakeUpsOverMonth", "Failed"]

    admin_client.post(
        reverse("admin:simulator_simvehicle_changelist"),
        {"action": "reset_wake_ups", "_selected_action": [asleep_vehicle.pk]},
    )
    third = send(asleep_vehicle, {"lights": {"on": True}})
    pump()

    assert outcome(third) == ("Success", "")


def test_a_vehicle_in_deep_sleep_times_out(fleet, asleep_vehicle, send):
    update(asleep_vehicle, last_driven_at=timezone.now() - dt.timedelta(days=15))

    action = send(asleep_vehicle, {"horn": {"state": "Activated"}})
    done = action.events.get(event_type="Done")
    pump()

    assert outcome(action) == ("Failed", "VehicleConnectionTimeout")
    assert (done.due_at - action.created_at).total_seconds() == pytest.approx((0.5 + 0.5 + 120.0) / 1000)
    asleep_vehicle.refresh_from_db()
    assert asleep_vehicle.wake_ups_used == 1
    assert asleep_vehicle.is_asleep()  # never reached: it did not wake


# --- the vendor's checks -----------------------------------------------------------------------


def test_without_subscription_a_remote_fails_with_missing_rights(fleet, awake_vehicle, send):
    update(awake_vehicle, remote_subscribed=False)

    action = send(awake_vehicle, {"horn": {"state": "Activated"}})
    pump()

    assert outcome(action) == ("Failed", "MissingRights")


def test_the_same_action_twice_fails_while_the_first_runs(fleet, awake_vehicle, send):
    unlock = send(awake_vehicle, {"door": {"state": "Unlocked"}})
    again = send(awake_vehicle, {"door": {"state": "Locked"}})
    horn = send(awake_vehicle, {"horn": {"state": "Activated"}})  # another type is not held up
    third = send(awake_vehicle, {"door": {"state": "Locked"}})  # the refused one does not count
    pump()
    after = send(awake_vehicle, {"door": {"state": "Locked"}})
    pump()

    assert outcome(unlock) == ("Success", "")
    assert outcome(again) == ("Failed", "SameActionInProgress")
    assert outcome(third) == ("Failed", "SameActionInProgress")
    assert outcome(horn) == ("Success", "")
    assert outcome(after) == ("Success", "")
    assert SimVehicle.objects.get(pk=awake_vehicle.pk).doors_locked is True


def test_an_open_door_refuses_the_lock_and_shows_in_the_status(fleet, awake_vehicle, send, get):
    update(awake_vehicle, door_open=True, doors_locked=False)

    action = send(awake_vehicle, {"door": {"state": "Locked"}})
    pump()

    assert outcome(action) == ("Failed", "DoorsOpen")
    doors = status_of(get, awake_vehicle)["doorsState"]
    assert doors["lockedStates"] == ["Unlocked"]
    assert {"identifier": "Driver", "state": "Open"} in doors["opening"]


@pytest.mark.parametrize("motorization", ["Electric", "Thermic"])
def test_a_vehicle_in_use_refuses_immobilization_and_shows_ignition_and_speed(
    fleet, awake_vehicle, send, get, motorization
):
    update(awake_vehicle, in_use=True, motorization=motorization)

    action = send(awake_vehicle, {"immobilization": {"activate": True}})
    pump()

    assert outcome(action) == ("Failed", "VehicleInUse")
    status = status_of(get, awake_vehicle)
    assert status["ignition"]["type"] == "Start"
    assert status["kinetic"]["moving"] is True and status["kinetic"]["speed"] > 0
    assert ("preconditioning" in status) is (motorization == "Electric")


def test_a_low_battery_refuses_preconditioning(fleet, awake_vehicle, send):
    update(awake_vehicle, motorization="Electric", energy_level=9.5)

    action = send(awake_vehicle, {"preconditioning": {"airConditioning": {"immediate": True}}})
    pump()

    assert outcome(action) == ("Failed", "NotPossibleDueToVehicleBatteryLevel")
    assert list(action.events.order_by("seq").values_list("status", flat=True)) == [
        "Accepted",
        "SentToVehicle",
        "VehicleBatteryChargeTooLow",
        "Failed",
    ]


# --- state changes visible in /status ----------------------------------------------------------


def test_commands_change_what_the_status_reports_once_done(fleet, awake_vehicle, send, get):
    update(awake_vehicle, motorization="Electric", plugged=True, charging=False)
    program = {"slot": 1, "enabled": True, "recurrence": "Daily", "start": "PT7H30M", "occurence": {"day": ["Mon"]}}
    before = status_of(get, awake_vehicle)

    actions = [
        send(awake_vehicle, {"charging": {"immediate": True, "schedule": {"nextDelayedTime": "2030-01-02T06:30:00Z"}}}),
        send(awake_vehicle, {"preconditioning": {"airConditioning": {"immediate": True, "programs": [program]}}}),
        send(awake_vehicle, {"lights": {"on": True}}),
        send(awake_vehicle, {"door": {"state": "Unlocked"}}),
        send(awake_vehicle, {"navigation": {"positions": [{"type": "Point", "coordinates": [2.35, 48.85]}]}}),
        send(awake_vehicle, {"stolen": {"trackingPeriod": {"running": 30, "shutdown": 600}}}),
    ]
    pump()
    after = status_of(get, awake_vehicle)

    assert [outcome(a)[0] for a in actions] == ["Success"] * len(actions)
    charging = before["energies"][0]["extension"]["electric"]["charging"]
    assert (charging["status"], charging["plugged"]) == ("Stopped", True)
    assert before["preconditioning"]["airConditioning"]["status"] == "Disabled"
    charging = after["energies"][0]["extension"]["electric"]["charging"]
    assert (charging["status"], charging["nextDelayedTime"]) == ("InProgress", "2030-01-02T06:30:00.000Z")
    air = after["preconditioning"]["airConditioning"]
    assert (air["status"], air["programs"]) == ("Enabled", [program])
    assert {light["status"] for light in after["lightingSystem"]["turn"]} == {"On"}
    assert after["doorsState"]["lockedStates"] == ["Unlocked"]
    assert after["updatedAt"] > before["updatedAt"]
    vehicle = SimVehicle.objects.get(pk=awake_vehicle.pk)
    assert vehicle.navigation_positions == [{"type": "Point", "coordinates": [2.35, 48.85]}]
    assert (vehicle.tracking_running, vehicle.tracking_shutdown) == (30, 600)


def test_charge_schedule_and_preferences_show_in_the_status(fleet, awake_vehicle, send, get):
    update(awake_vehicle, motorization="Hybrid", plugged=False)
    program = {"slot": 2, "enabled": True, "start": "PT23H", "end": "PT6H", "occurence": {"day": ["Mon", "Tue"]}}

    send(awake_vehicle, {"charging": {"schedule": {"programs": [program]}}})
    pump()
    send(awake_vehicle, {"charging": {"preferences": {"level": "Level3", "type": "Full"}}})
    pump()

    charging = status_of(get, awake_vehicle)["energies"][0]["extension"]["electric"]["charging"]
    assert charging["status"] == "Disconnected"
    assert charging["schedule"] == {"programs": [program]}
    assert (charging["chargingPowerLevel"], charging["type"]) == ("Level3", "Full")


def test_a_vehicle_reported_stolen_shows_it_and_refuses_everyday_commands(fleet, awake_vehicle, send, get):
    assert "stolen" not in status_of(get, awake_vehicle)

    report = send(awake_vehicle, {"stolen": {"stolen": True}})
    pump()
    stolen = status_of(get, awake_vehicle)["stolen"]
    horn = send(awake_vehicle, {"horn": {"state": "Activated"}})
    immobilize = send(awake_vehicle, {"stolen": {"immobilization": {"activate": True}}})
    pump()

    assert outcome(report) == ("Success", "")
    assert_schema("StolenObj", stolen)
    assert stolen["state"] is True
    since = SimVehicle.objects.get(pk=awake_vehicle.pk).stolen_since
    assert since is not None
    assert stolen["startedAt"] == stolen["createdAt"] == rfc3339(since)
    assert outcome(horn) == ("Failed", "NotPossibleDueToVehicleStolenState")
    assert outcome(immobilize) == ("Success", "")
    assert SimVehicle.objects.get(pk=awake_vehicle.pk).immobilized is True

    found = send(awake_vehicle, {"stolen": {"stolen": False}})
    pump()

    assert outcome(found) == ("Success", "")
    assert "stolen" not in status_of(get, awake_vehicle)
    assert SimVehicle.objects.get(pk=awake_vehicle.pk).stolen_since is None


# --- onboard capabilities -----------------------------------------------------------------------


def capabilities_of(get, vehicle, **params) -> dict:
    response = get(f"fleets/{vehicle.fleet_id}/vehicles/{vehicle.id}", **params)
    assert response.status_code == 200
    body = response.json()
    assert_schema("Vehicle", body)
    assert_schema("VehicleCapabilities", body)
    return body


REMOTE_KEYS = {"preconditioning", "door", "horn", "charging", "lights", "wakeup", "navigation", "stolen"}


@pytest.mark.parametrize(("motorization", "electrified"), [("Electric", True), ("Hybrid", True), ("Thermic", False)])
def test_capabilities_list_every_remote_and_charging_only_when_electrified(
    fleet, awake_vehicle, get, motorization, electrified
):
    update(awake_vehicle, motorization=motorization)

    body = capabilities_of(get, awake_vehicle, extension="onboardCapabilities")

    capabilities = body["_embedded"]["extension"]["onboardCapabilities"]
    remote = capabilities["remote"]
    assert set(remote) == REMOTE_KEYS
    assert all({"supported", "scopeName", "parameters"} <= set(entry) for entry in remote.values())
    assert remote["charging"]["supported"] is electrified
    assert remote["preconditioning"]["supported"] is electrified
    assert all(remote[k]["supported"] for k in REMOTE_KEYS - {"charging", "preconditioning"})
    assert "data:position" in capabilities["data"]
    assert ("data:telemetry:vehicle:preconditioning" in capabilities["data"]) is electrified


def test_without_subscription_the_capabilities_have_no_remote(fleet, awake_vehicle, get):
    update(awake_vehicle, remote_subscribed=False)

    body = capabilities_of(get, awake_vehicle, extension="onboardCapabilities,branding")

    assert "remote" not in body["_embedded"]["extension"]["onboardCapabilities"]
    assert body["_embedded"]["extension"]["onboardCapabilities"]["data"]


def test_capabilities_come_only_when_asked_and_unknown_extensions_are_a_400(fleet, awake_vehicle, get):
    plain = capabilities_of(get, awake_vehicle)
    wrong = get(f"fleets/{fleet.id}/vehicles/{awake_vehicle.id}", extension="telemetry")

    assert "_embedded" not in plain
    assert wrong.status_code == 400
    assert_schema("xError", wrong.json())
    assert "extension" in wrong.json()["message"]


# --- admin and demo state -------------------------------------------------------------------


def test_set_vehicles_state_takes_the_new_traits(fleet, awake_vehicle):
    count = demo.set_vehicles_state(
        vehicle_ids=[awake_vehicle.pk], remote_subscribed=False, door_open=True, in_use=True, wake_ups_used=20
    )

    vehicle = SimVehicle.objects.get(pk=awake_vehicle.pk)
    assert count == 1
    assert (vehicle.remote_subscribed, vehicle.door_open, vehicle.in_use, vehicle.wake_ups_used) == (
        False,
        True,
        True,
        20,
    )
    with pytest.raises(ValueError, match="not a demo field"):
        demo.set_vehicles_state(vehicle_ids=[awake_vehicle.pk], vin="X")


def test_the_admin_filters_and_edits_the_traits_in_the_list(admin_client, fleet, awake_vehicle):
    update(awake_vehicle, in_use=True)
    url = reverse("admin:simulator_simvehicle_changelist")

    filtered = admin_client.get(url, {"in_use__exact": "1"})

    assert filtered.status_code == 200
    assert list(filtered.context["cl"].result_list) == [awake_vehicle]
    assert {"door_open", "in_use", "remote_subscribed", "stolen", "wake_ups_used"} <= set(
        filtered.context["cl"].list_editable
    )
