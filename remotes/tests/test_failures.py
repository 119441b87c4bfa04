"""Documented failure paths, one or more per feature, each reaching the vendor's failureCause."""

import datetime as dt

import pytest
from django.utils import timezone

from fleetportal.testing import drive
from remotes import services
from remotes.models import ActionStatus, RemoteAction
from simulator.models import SimVehicle, current_month

HORN = {"horn": {"state": "Activated"}}
CASES = {
    # member: (vehicle state at the vendor, command, expected status, expected cause, a Pending status on the way)
    "charging": ({"plugged": False}, {"charging": {"immediate": True}}, "failed", "ExternalChargingSystemError", None),
    "preconditioning": ({"energy_level": 9.0}, {"preconditioning": {"airConditioning": {"immediate": True}}}, "failed", "NotPossibleDueToVehicleBatteryLevel", "VehicleBatteryChargeTooLow"),
    "door": ({"doors_locked": False, "door_open": True}, {"door": {"state": "Locked"}}, "failed", "DoorsOpen", None),
    "horn": ({"remote_subscribed": False}, HORN, "failed", "MissingRights", None),
    "lights": ({"asleep": True, "awake_until": None, "online": False}, {"lights": {"on": True}}, "failed", "VehicleConnectionTimeout", "WakingUpVehicle"),
    "wakeUp": ({"asleep": True, "awake_until": None, "wake_up_budget": 20, "wake_ups_used": 20}, {"wakeUp": {}}, "failed", "TooManyWakeUpsOverMonth", "TooManyWakeUpsOverMonth"),
    "navigation": ({"stolen": True}, {"navigation": {"positions": [{"type": "Point", "coordinates": [2.29, 48.85]}]}}, "failed", "NotPossibleDueToVehicleStolenState", None),
    "immobilization": ({"in_use": True}, {"immobilization": {"activate": True}}, "failed", "VehicleInUse", None),
    "stolen": ({"stolen": True}, {"stolen": {"stolen": True}}, "already_done", "", None),
}


@pytest.fixture
def vehicle(demo_fleet):
    return demo_fleet.vehicles.order_by("vin").first()


@pytest.mark.parametrize("member", CASES)
def test_each_feature_has_a_documented_failure_reaching_its_cause(member, vehicle, api, operator, make_token):
    state, body, status, cause, pending = CASES[member]
    if "wake_ups_used" in state:
        state = {**state, "wake_up_month": current_month()}
    SimVehicle.objects.filter(vin=vehicle.vin).update(**state)
    partner = api(make_token(operator))

    r = partner.post(f"{partner.base_url}/api/v1/vehicles/{vehicle.vin}/remotes/", json={**body, "reason": "failure drill"}, timeout=10)
    assert r.status_code == 202, r.text
    action = drive(r.json()["id"])

    assert (action.status, action.failure_cause) == (status, cause)
    if pending:
        assert action.events.filter(event_type="Pending", status=pending).exists()
    shown = partner.get(r.json()["url"], timeout=10).json()
    if cause:
        assert shown["failure"]["cause"] == cause and shown["failure"]["advice"]  # plain words, what to do next


def test_a_second_horn_while_one_runs_is_same_action_in_progress(vehicle, operator):
    first = services.request_remote(vehicle=vehicle, command=HORN, by=operator)
    second = services.request_remote(vehicle=vehicle, command=HORN, by=operator)
    services.submit_remote_action(action_id=first.pk)

    second = drive(second.pk)
    first = drive(first.pk)

    assert (first.status, second.status, second.failure_cause) == ("success", "failed", "SameActionInProgress")


def test_a_vehicle_in_deep_sleep_times_out_after_trying_to_wake(vehicle, operator):
    SimVehicle.objects.filter(vin=vehicle.vin).update(asleep=True, awake_until=None, last_driven_at=timezone.now() - dt.timedelta(days=30))
    action = drive(services.request_remote(vehicle=vehicle, command=HORN, by=operator).pk)

    assert (action.status, action.failure_cause) == (ActionStatus.FAILED, "VehicleConnectionTimeout")
    waking, done = (action.events.get(status=s) for s in ("WakingUpVehicle", "Failed"))
    assert (done.event_date - waking.event_date).total_seconds() > 1  # 120 s scaled by the simulator's speed


def test_a_thermic_vehicle_cannot_be_asked_to_charge(vehicle, api, operator, make_token):
    vehicle.motorization = "Thermic"
    vehicle.save()
    partner = api(make_token(operator))
    r = partner.post(f"{partner.base_url}/api/v1/vehicles/{vehicle.vin}/remotes/", json={"charging": {"immediate": True}}, timeout=10)
    assert r.status_code == 409 and "electric" in r.json()["detail"]
    assert RemoteAction.objects.count() == 0


def test_import_learns_which_vehicle_has_no_remote_service(stack, api, operator, organisation):
    from simulator.seeding import seed_world
    from vehicles.models import Vehicle
    from vehicles.services import import_fleet

    sim = seed_world(fleet_name="Subscriptions", vehicle_count=3, seed=9)
    SimVehicle.objects.filter(fleet=sim, vin=SimVehicle.objects.filter(fleet=sim).order_by("vin").last().vin).update(remote_subscribed=False)
    import_fleet(fleet_id=sim.id, organisation=organisation)
    unsubscribed = Vehicle.objects.filter(fleet__external_id=sim.id).order_by("vin").last()

    from remotes.capabilities import availability

    verdict = availability(unsubscribed, "horn")
    assert not verdict.available and "no remote-control service" in verdict.reason
    assert availability(Vehicle.objects.filter(fleet__external_id=sim.id).order_by("vin").first(), "charging").available
